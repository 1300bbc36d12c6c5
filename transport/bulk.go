package transport

import (
	"errors"
	"fmt"

	"github.com/deaddrop/deaddrop/feed"
)

// ErrNoBulk reports a transport that cannot carry bulk content
// (attachments). The mix transport carries fixed-size chunk operations
// only: a 100 MiB file would be some 25,600 Sphinx packets each way at the
// mix's paced rate, hours per file, and sending it around the mix instead
// would show the store the uploader's node next to the size and time of
// the upload. deaddrop does neither silently: file messages are refused
// through the mix.
var ErrNoBulk = errors.New("this transport carries only message chunks, not files: " +
	"the mix network would take hours for a large file, and sending it outside the mix would reveal your node to the store; " +
	"send files without --mix (text messages still go through the mix)")

// Bulker is a transport that carries bulk content itself.
type Bulker interface {
	Bulk() (feed.BulkStore, error)
}

// BulkOf returns the bulk store a transport reaches: the store of a Direct
// transport, if it holds bulk content, or what a Bulker offers. Any other
// transport (the mix) is ErrNoBulk: bulk content goes only through a
// transport that supports it, never around one.
func BulkOf(t Transport) (feed.BulkStore, error) {
	switch t := t.(type) {
	case *Direct:
		if b, ok := t.Store.(feed.BulkStore); ok {
			return b, nil
		}
		return nil, fmt.Errorf("%w (the store %T holds no bulk content)", ErrNoBulk, t.Store)
	case Bulker:
		return t.Bulk()
	}
	return nil, fmt.Errorf("%w (transport %T)", ErrNoBulk, t)
}
