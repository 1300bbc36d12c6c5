package deaddrop

import "github.com/deaddrop/deaddrop/sync"

// Errors a caller can test with errors.Is. They are the sync package's
// values, so errors.Is works whichever of the two a caller names.
var (
	// ErrHomeInUse: another process (a chat, a daemon) has the home open.
	// The CLI then talks to a running daemon instead (deaddrop daemon).
	ErrHomeInUse = sync.ErrHomeLocked
	// ErrNoAccount: the home holds no account (Init first).
	ErrNoAccount = sync.ErrNoAccount
	// ErrAccountExists: Init, Restore or JoinDevice on a home with an account.
	ErrAccountExists = sync.ErrAccountExists
	// ErrUnknownContact: no conversation with that name.
	ErrUnknownContact = sync.ErrUnknownContact
	// ErrNameInUse: the name is taken by a contact or a pending invite.
	ErrNameInUse = sync.ErrNameInUse
	// ErrNotStored: a send is committed and will be sent, but the store has
	// not accepted it yet (see SendWith).
	ErrNotStored = sync.ErrNotStored
	// ErrEmptyMessage and ErrMessageTooLarge: a body Send refuses.
	ErrEmptyMessage    = sync.ErrEmptyMessage
	ErrMessageTooLarge = sync.ErrMessageTooLarge
	// ErrClientIDReused: a ClientID sent before with another body.
	ErrClientIDReused = sync.ErrClientIDReused
	// ErrInviteUsed: an invite this account accepted already.
	ErrInviteUsed = sync.ErrInviteUsed
	// ErrInviteTaken: somebody else used the invite first.
	ErrInviteTaken = sync.ErrInviteTaken
	// ErrBadPhrase: not a valid recovery phrase.
	ErrBadPhrase = sync.ErrBadPhrase
	// ErrBadLinkCode: a device link code that is malformed, unknown or used.
	ErrBadLinkCode = sync.ErrBadLinkCode
	// ErrNoAccountKey: the operation needs the device holding the account key.
	ErrNoAccountKey = sync.ErrNoAccountKey
	// ErrDeviceRemoved: this device was removed from the account.
	ErrDeviceRemoved = sync.ErrDeviceRemoved
	// ErrNoHistory: the account keeps no history log.
	ErrNoHistory = sync.ErrNoHistory
	// ErrNotLogged: no history block logs the message (yet).
	ErrNotLogged = sync.ErrNotLogged
	// ErrCorruptState: a state record does not decode; 'deaddrop restore'
	// rebuilds the state from the store.
	ErrCorruptState = sync.ErrCorruptState
	// ErrNoMessage: a message ID that names no message in the history.
	ErrNoMessage = sync.ErrNoMessage
)
