"""Every word the widget shows, translated by Django for the visitor's language.

The widget has no strings of its own: the config endpoint sends these, rendered in the
active language, so a site's own translations (``LOCALE_PATHS``) can override them.
"""

from __future__ import annotations

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from webcall_widget.voicehub import errors

UI: dict[str, Promise] = {
    "openChat": _("Open chat"),
    "closeChat": _("Close chat"),
    "start": _("Start chat"),
    "chooseMode": _("How would you like to talk?"),
    "modeText": _("Chat"),
    "modeWebAudio": _("Voice call"),
    "modeTextAudio": _("Voice and chat"),
    "messageLabel": _("Message"),
    "messagePlaceholder": _("Type a message…"),
    "send": _("Send"),
    "end": _("End conversation"),
    "restart": _("Start again"),
    "retry": _("Try again"),
    "you": pgettext_lazy("transcript speaker", "You"),
    "stateIdle": _("Ready when you are"),
    "stateConnecting": _("Connecting…"),
    "stateLive": _("Online"),
    "stateEnded": _("Conversation ended"),
    "stateError": _("Not connected"),
    "transcript": _("Conversation"),
    "agentSays": _("%(name)s says: %(text)s"),
    "tooLong": _("That message is too long."),
    "mute": _("Mute microphone"),
    "unmute": _("Unmute microphone"),
    "micLevel": _("Microphone level"),
    "voiceListening": _("Listening…"),
    "voiceSpeaking": _("Speaking. Talk to interrupt."),
    "voiceMuted": _("Microphone muted"),
    "voiceStarting": _("Starting the microphone…"),
    "textInstead": _("Chat by text instead"),
    "continuingAsText": _("You can keep going by typing."),
    "stateReconnecting": _("Reconnecting…"),
    "continueVoice": _("Continue the voice call"),
    "notSent": _("Not sent"),
    "waitingToSend": _("Waiting to send…"),
    "interrupted": pgettext_lazy("an agent message the visitor talked over", "Interrupted"),
}

# Codes from the create-call endpoint, the relay's error frames, and close codes.
ERRORS: dict[str, str | Promise] = {
    "agent_not_found": _("This assistant does not exist."),
    "agent_disabled": _("This assistant is unavailable right now."),
    "origin_not_allowed": _("This assistant cannot be used on this site."),
    "mode_not_allowed": _("This assistant does not offer that kind of conversation."),
    "invalid_request": _("Something went wrong starting the conversation. Please try again."),
    "rate_limited": _("The assistant is busy right now. Please try again in a little while."),
    "agent_busy": _("All lines are busy right now. Please try again in a minute."),
    "daily_limit": _(
        "The assistant has taken all the calls it can today. Please come back tomorrow."
    ),
    "budget_exhausted": _(
        "The assistant has used all its talk time for today. Please come back tomorrow."
    ),
    "too_many_pending": _(
        "Too many conversations are starting from your connection. "
        "Please wait a minute and try again."
    ),
    "login_required": _("Please log in to talk to this assistant."),
    "staff_only": _("This assistant is only for staff."),
    "ended_by_staff": _("This conversation was ended by the site."),
    "restarting": _("The assistant is restarting. Please start again in a moment."),
    "relay_error": _("Something went wrong on our side. Please start again."),
    errors.AgentMisconfigured.code: errors.AgentMisconfigured.visitor_message,
    errors.InvalidApiKey.code: errors.InvalidApiKey.visitor_message,
    errors.InsufficientCredits.code: errors.InsufficientCredits.visitor_message,
    errors.OperationNotAllowed.code: errors.OperationNotAllowed.visitor_message,
    errors.UpstreamUnavailable.code: errors.UpstreamUnavailable.visitor_message,
    errors.UpstreamBadResponse.code: errors.UpstreamBadResponse.visitor_message,
    errors.UpstreamSocketError.code: errors.UpstreamSocketError.visitor_message,
    errors.UpstreamJoinTimeout.code: errors.UpstreamJoinTimeout.visitor_message,
    errors.UpstreamClosed.code: errors.UpstreamClosed.visitor_message,
    "upstream_error": _("The assistant reported a problem."),
    "bad_token": _("This conversation link has expired. Please start again."),
    "token_used": _("This conversation is already open in another window."),
    "unknown_call": _("This conversation no longer exists. Please start again."),
    "timeout": _("The conversation ended because it was idle or too long."),
    "message_too_long": _("That message is too long."),
    "empty_message": _("The message is empty."),
    "text_not_allowed": _("This conversation is voice only."),
    "audio_not_allowed": _("This conversation is text only."),
    "malformed_frame": _("Something went wrong. Please start again."),
    "frame_too_large": _("Something went wrong. Please start again."),
    "not_ready": _("Still connecting, one moment."),
    "dropped": _("The connection was lost. Please start again."),
    "taken_over": _("This conversation continues in another tab or window."),
    "call_over": _("This conversation has ended."),
    "resume_failed": _("This conversation could not be continued. Please start again."),
    "lost_while_away": _(
        "The connection was lost for too long, so the conversation ended. Please start again."
    ),
    "network": _("The assistant could not be reached. Check your connection and try again."),
    "mic_denied": _(
        "Microphone access is blocked. Allow it in your browser's site settings (next to "
        "the address bar), then try again."
    ),
    "mic_missing": _("No microphone was found. Connect one and try again."),
    "mic_busy": _("Your microphone is being used by another app. Close it and try again."),
    "mic_insecure": _("Voice needs a secure (https) page."),
    "audio_failed": _("Sound could not be started in this browser."),
}


def widget_strings() -> dict[str, object]:
    """The strings in the active language, as the config endpoint sends them."""
    return {
        "ui": {key: str(value) for key, value in UI.items()},
        "errors": {key: str(value) for key, value in ERRORS.items()},
    }
