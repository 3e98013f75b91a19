"""Automated Slack Onboarding: email a new user their Slack connect token.

From advanced-api-endpoints.md, "Slack Connect API / Automated Slack Onboarding", with the
blocking client. Changed from the documentation only where marked "changed:": credentials,
and ``send_email``, which the documentation leaves to you ("Implementation specific to your
email service"): here it builds the message with ``email.mime`` and writes it to an
``outbox`` folder under a temporary directory instead of talking to a mail server.

    CODEGEN_API_TOKEN=... CODEGEN_ORG_ID=... python examples/slack_onboarding.py
"""

import os
import tempfile
from email.mime.text import MIMEText
from pathlib import Path

from codegen_sync import Agent

# changed: credentials from the environment; mail goes to files under a temporary dir.
ORG_ID = int(os.environ["CODEGEN_ORG_ID"])
OUTBOX = Path(os.environ.get("CODEGEN_EXAMPLE_OUTPUT_DIR") or tempfile.mkdtemp()) / "outbox"


# From here on: the documentation's code, line for line.
# fmt: off
def onboard_user_to_slack(org_id, user_email):
    """Automate Slack connection for new users."""

    agent = Agent(org_id=org_id)

    # Generate token
    response = agent.generate_slack_connect_token(org_id=org_id)

    # Send instructions via email
    message = f"""
    Welcome to Codegen!

    To connect your Slack account:

    1. Open Slack and find the Codegen bot
    2. Send this message in a DM:

       Connect my account: {response.token}

    3. This token expires in {response.expires_in_minutes} minutes

    After connecting, you can:
    - Trigger agents with @codegen mentions
    - Receive notifications about agent runs
    - Collaborate with team members

    Questions? Reply to this email.
    """

    # Send email (implementation depends on your email service)
    send_email(
        to=user_email,
        subject="Connect Your Slack to Codegen",
        body=message
    )

    print(f"✓ Onboarding email sent to {user_email}")
    print(f"Token: {response.token} (expires in {response.expires_in_minutes} min)")

    return response.token

def send_email(to, subject, body):
    """Send email notification."""
    # changed: the documentation leaves this empty; write the message to the outbox
    # (with smtplib, this is where smtplib.SMTP(host).send_message(mail) would go).
    mail = MIMEText(body)
    mail["To"] = to
    mail["Subject"] = subject
    OUTBOX.mkdir(parents=True, exist_ok=True)
    path = OUTBOX / f"{to}.eml"
    path.write_text(mail.as_string(), encoding="utf-8")
    print(f"(wrote {path})")


# changed: the documentation defines the function; this runs it.
if __name__ == "__main__":
    onboard_user_to_slack(org_id=ORG_ID, user_email="new.hire@example.com")
