"""Every word the widget shows, translated by Django for the visitor's language.

The widget has no strings of its own: the config endpoint sends these, rendered in the
active language, so a site's own translations (``LOCALE_PATHS``) can override them.

:data:`ERRORS` is the one place a visitor's error message is written. The HTTP views, the
limits, the relay and the VoiceHub errors (:mod:`webcall_widget.voicehub.errors`, which
carry only a ``code``) name an error by its code, and :func:`visitor_message` turns the
code into the visitor's words, so a code reads the same over HTTP and on the socket.
"""

from __future__ import annotations

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

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
    # a voice call's sound, not started a while after the click: held back by the browser
    # (the button starts it), or still not started after the button (no output device)
    "soundHeld": _("Your browser is holding the sound back."),
    "noSound": _("No speakers or headphones were found, so there is no sound."),
    "soundOn": _("Turn the sound on"),
    # the words on a message, by its mark (panel.js)
    "unsent": _("Not sent"),
    "pending": _("Waiting to send…"),
    "interrupted": pgettext_lazy("an agent message the visitor talked over", "Interrupted"),
}

# Codes from the create-call endpoint, the relay's error frames, and close codes.
ERRORS: dict[str, Promise] = {
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
    # The relay's close code for both (CloseCode.ACCESS_DENIED), when no error frame says which.
    "access_denied": _("Please log in with an account that may talk to this assistant."),
    "ended_by_staff": _("This conversation was ended by the site."),
    "restarting": _("The assistant is restarting. Please start again in a moment."),
    "relay_error": _("Something went wrong on our side. Please start again."),
    # VoiceHub's answers and the upstream socket (webcall_widget.voicehub.errors)
    "agent_misconfigured": _(
        "This assistant is not set up correctly yet. Please try again later."
    ),
    "invalid_api_key": _(
        "This assistant is not available right now because of a configuration problem."
    ),
    "insufficient_credits": _(
        "This assistant is not taking calls right now. Please try again later."
    ),
    "operation_not_allowed": _("This kind of conversation is not available with this assistant."),
    "upstream_unavailable": _(
        "The assistant's service is not responding. Please try again in a moment."
    ),
    "upstream_bad_response": _(
        "The assistant could not be reached. Please try again in a moment."
    ),
    "upstream_failed": _("The connection to the assistant failed. Please start again."),
    "upstream_join_timeout": _("The connection to the assistant failed. Please start again."),
    "upstream_lost": _("The connection to the assistant was lost. Please start again."),
    "upstream_error": _("The assistant reported a problem."),
    "upstream_slow": _(
        "The assistant's connection is slow: some of what you said may not have been heard."
    ),
    "connection_slow": _("Your connection is slow: some of the assistant's audio was skipped."),
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


def visitor_message(code: str, **params: object) -> str:
    """What a visitor is told about the error ``code``, in the active language.

    ``params`` fill the message's ``%(name)s`` placeholders, if it has any.

    Raises:
        KeyError: ``code`` is not in :data:`ERRORS`; every code the app sends is.
    """
    message = str(ERRORS[code])
    return message % params if params else message


def widget_strings() -> dict[str, object]:
    """The strings in the active language, as the config endpoint sends them."""
    return {
        "ui": {key: str(value) for key, value in UI.items()},
        "errors": {key: str(value) for key, value in ERRORS.items()},
    }
