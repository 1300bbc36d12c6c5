// Package attach sends files alongside conversations: a file is encrypted
// on the sender's side under a fresh key, in segments, each segment one
// object of the store's own bulk content (feed.BulkStore: Bee's /bytes,
// Kubo's add, files on disk), and described by a Manifest that travels in a
// message. The store sees only ciphertext objects of about the segment
// size, unlinked to any conversation slot.
//
// Encryption is age (filippo.io/age): every segment is an age file
// encrypted to one X25519 recipient whose identity, generated for this
// file alone, is the manifest's Key. age's STREAM payload authenticates
// every 64 KiB chunk and the end of the segment, so a segment is
// decrypted while it streams and a truncated or altered one fails before a
// forged byte is released; each segment is decrypted on its own, which is
// what makes downloads parallel and resumable per segment. The SHA-256 of
// the whole plaintext in the manifest catches what a per-segment check
// cannot: segments swapped or dropped, or a sender that lies about size.
//
// Why segments rather than one object: a resumed upload sends again only
// the segments its journal lacks (an interrupted /bytes or add upload has
// to start over), Parallel segments move at once in both directions, and
// memory stays at about Parallel+1 segments whatever the file's size.
//
// Why a fresh X25519 identity rather than the STREAM alone: age keeps its
// STREAM internal; a per-file identity in the manifest uses age exactly as
// designed, costs one X25519 operation and a ~200-byte header per segment,
// and each segment still gets its own random file key and nonce.
package attach
