"""The columns a message (the content of a one-off mailing or of a campaign step) becomes in
its catalogue row: ``spotler.mailings`` and ``spotler.campaign_mailings`` alike."""

from typing import Any

from spotler_pipeline.client.models import Message


def message_columns(message: Message | None) -> dict[str, Any]:
    """The message's name, author, subject and sender; all ``None`` without a message."""
    return {
        "message_name": message.name if message else None,
        "message_author": message.author if message else None,
        "subject": message.subject if message else None,
        "from_name": message.from_name if message else None,
        "from_email": message.from_email if message else None,
    }
