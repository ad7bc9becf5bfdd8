"""The dispatch table: every XIMSS operation the bridge serves, its handler, and when it is legal.

An element not listed here is answered with errorNum 500 ("unknown command"), as the spec shows.
"""

from __future__ import annotations

from bridge.ximss.ops import (
    acl,
    calendar,
    folder,
    instant,
    login,
    mailbox,
    makecall,
    message,
    prefs,
    presence,
    provisioning,
    reading,
    roster,
    scheduling,
    sending,
    service,
    signaling,
    speller,
    strings,
)
from bridge.ximss.ops.base import Operation, Phase
from bridge.ximss.ops.retrieve import retrieve_xml

OPERATIONS: dict[str, Operation] = {
    # Login section: before login only (XIMSS "Login Operations").
    "listFeatures": Operation(login.list_features, Phase.PRELOGIN),
    "starttls": Operation(login.starttls, Phase.PRELOGIN),
    "login": Operation(login.login, Phase.PRELOGIN),
    "auth": Operation(login.auth, Phase.PRELOGIN),
    "signup": Operation(provisioning.signup, Phase.PRELOGIN),
    "recoverPassword": Operation(provisioning.recover_password, Phase.PRELOGIN),
    # Service operations.
    "noop": Operation(service.noop, Phase.ANY),
    "bye": Operation(service.bye, Phase.ANY),
    "readTime": Operation(service.read_time, Phase.ANY),
    "listKnownValues": Operation(service.list_known_values, Phase.ANY),
    "readStrings": Operation(strings.read_strings, Phase.ANY),
    "spellerList": Operation(speller.speller_list, Phase.SESSION),
    "spellerCheck": Operation(speller.speller_check, Phase.SESSION),
    "cliExecute": Operation(service.cli_execute, Phase.SESSION),
    "clearUploaded": Operation(service.clear_uploaded, Phase.SESSION),
    "retrieveXML": Operation(retrieve_xml, Phase.SESSION),
    "passwordModify": Operation(provisioning.password_modify, Phase.SESSION),
    "readStatus": Operation(prefs.read_status, Phase.SESSION),
    "setSessionOption": Operation(prefs.set_session_option, Phase.SESSION),
    "setClientName": Operation(prefs.set_client_name, Phase.SESSION),
    # Preferences (CommuniGate's shape; XIMSS 5.1 leaves them out).
    "prefsRead": Operation(prefs.prefs_read, Phase.SESSION),
    "prefsStore": Operation(prefs.prefs_store, Phase.SESSION),
    # Mailbox management.
    "mailboxList": Operation(mailbox.mailbox_list, Phase.SESSION),
    "mailboxCreate": Operation(mailbox.mailbox_create, Phase.SESSION),
    "mailboxRename": Operation(mailbox.mailbox_rename, Phase.SESSION),
    "mailboxRemove": Operation(mailbox.mailbox_remove, Phase.SESSION),
    "mailboxSubList": Operation(mailbox.mailbox_sub_list, Phase.SESSION),
    "mailboxSubUpdate": Operation(mailbox.mailbox_sub_update, Phase.SESSION),
    # Access rights (RFC 4314 ACL on the mail server).
    "mailboxRightsGet": Operation(acl.mailbox_rights_get, Phase.SESSION),
    "mailboxACLList": Operation(acl.mailbox_acl_list, Phase.SESSION),
    "mailboxACLUpdate": Operation(acl.mailbox_acl_update, Phase.SESSION),
    # Folders (Mailbox Operations).
    "folderOpen": Operation(folder.folder_open, Phase.SESSION),
    "folderReopen": Operation(folder.folder_reopen, Phase.SESSION),
    "folderBrowse": Operation(folder.folder_browse, Phase.SESSION),
    "folderSync": Operation(folder.folder_sync, Phase.SESSION),
    "folderClose": Operation(folder.folder_close, Phase.SESSION),
    "folderExpunge": Operation(folder.folder_expunge, Phase.SESSION),
    "messageMark": Operation(message.message_mark, Phase.SESSION),
    "messageCopy": Operation(message.message_copy, Phase.SESSION),
    "messageMove": Operation(message.message_move, Phase.SESSION),
    "messageRemove": Operation(message.message_remove, Phase.SESSION),
    "folderRead": Operation(reading.folder_read, Phase.SESSION),
    "messageAppend": Operation(sending.message_append, Phase.SESSION),
    "messageSubmit": Operation(sending.message_submit, Phase.SESSION),
    "messageRedirect": Operation(sending.message_redirect, Phase.SESSION),
    "messageForward": Operation(sending.message_forward, Phase.SESSION),
    "messageConfirm": Operation(sending.message_confirm, Phase.SESSION),
    "contactAppend": Operation(sending.contact_append, Phase.SESSION),
    "SMIMEUnlock": Operation(sending.smime_unsupported, Phase.SESSION),
    "SMIMELock": Operation(sending.smime_unsupported, Phase.SESSION),
    "SMIMEModifyPassword": Operation(sending.smime_unsupported, Phase.SESSION),
    # Calendars (CalDAV; iTIP mail through SMTP).
    "calendarOpen": Operation(calendar.calendar_open, Phase.SESSION),
    "calendarClose": Operation(calendar.calendar_close, Phase.SESSION),
    "findEvents": Operation(calendar.find_events, Phase.SESSION),
    "calendarRead": Operation(calendar.calendar_read, Phase.SESSION),
    "calendarPublish": Operation(scheduling.calendar_publish, Phase.SESSION),
    "calendarCancel": Operation(scheduling.calendar_cancel, Phase.SESSION),
    "calendarUpdate": Operation(scheduling.calendar_update, Phase.SESSION),
    "calendarAccept": Operation(scheduling.calendar_accept, Phase.SESSION),
    "calendarDecline": Operation(scheduling.calendar_decline, Phase.SESSION),
    # Signaling (SIP user agent per bound session).
    "signalBind": Operation(signaling.signal_bind, Phase.SESSION),
    "signalUnbind": Operation(signaling.signal_unbind, Phase.SESSION),
    "callStart": Operation(signaling.call_start, Phase.SESSION),
    "callProvision": Operation(signaling.call_provision, Phase.SESSION),
    "callAccept": Operation(signaling.call_accept, Phase.SESSION),
    "callReject": Operation(signaling.call_reject, Phase.SESSION),
    "callRedirect": Operation(signaling.call_redirect, Phase.SESSION),
    "callKill": Operation(signaling.call_kill, Phase.SESSION),
    "callSendDTMF": Operation(signaling.call_send_dtmf, Phase.SESSION),
    "callUpdate": Operation(signaling.call_update, Phase.SESSION),
    "callTransfer": Operation(signaling.call_transfer, Phase.SESSION),
    "makeCall": Operation(makecall.make_call, Phase.SESSION),
    # Instant messages (SIP MESSAGE).
    "sendIM": Operation(instant.send_im, Phase.SESSION),
    "closeIM": Operation(instant.close_im, Phase.SESSION),
    # Roster and presence (XMPP's model: roster in IMAP METADATA, presence over SIP).
    "rosterList": Operation(roster.roster_list, Phase.SESSION),
    "rosterSet": Operation(roster.roster_set, Phase.SESSION),
    "presenceSet": Operation(presence.presence_set, Phase.SESSION),
}
