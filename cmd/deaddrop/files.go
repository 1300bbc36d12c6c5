package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"os"
	"path/filepath"
	"strings"
	gosync "sync"
	"sync/atomic"
	"time"

	"github.com/deaddrop/deaddrop"
	"github.com/deaddrop/deaddrop/daemon"
	"github.com/spf13/cobra"
	"golang.org/x/term"
)

// sendFile uploads path and sends it to contact with caption text.
func (c *cli) sendFile(ctx context.Context, cl *deaddrop.Client, contact, path, mediaType, text string) (deaddrop.Message, error) {
	f, err := os.Open(path)
	if err != nil {
		return deaddrop.Message{}, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return deaddrop.Message{}, err
	}
	if !st.Mode().IsRegular() {
		return deaddrop.Message{}, usageError{fmt.Errorf("%s is not a regular file", path)}
	}
	if st.Size() > deaddrop.MaxFileSize {
		return deaddrop.Message{}, fmt.Errorf("%s has %d bytes: files of at most %d MiB can be sent", path, st.Size(), deaddrop.MaxFileSize>>20)
	}
	if mediaType == "" {
		mediaType, _, _ = strings.Cut(mime.TypeByExtension(filepath.Ext(path)), ";")
	}
	bar := c.progressBar("uploading "+filepath.Base(path), st.Size())
	m, err := cl.SendFileProgress(ctx, contact, f, filepath.Base(path), mediaType, text, bar.add)
	bar.done(err)
	return m, err
}

func (c *cli) saveCmd() *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use: "save <message-id> [--out PATH]",
		Example: `  deaddrop save bob:12
  deaddrop save 3f2a…(the message's 32-hex id) --out ~/Downloads`,
		Short: "Download, verify and save a received file ('history' and 'read' show each file's message ID)",
		Args:  args(1, "one argument: the message ID, e.g. bob:12 (or the message's 32-hex id, as --json shows)"),
		RunE: func(cmd *cobra.Command, a []string) error {
			dir, rename := out, ""
			if st, err := os.Stat(out); err != nil || !st.IsDir() {
				dir, rename = filepath.Dir(out), out // a file name: saved beside it, then renamed
				if _, err := os.Lstat(out); err == nil {
					return fmt.Errorf("%s exists: deaddrop never replaces a file (pick another --out, or a directory)", out)
				}
			}
			ctx, cl, done, err := c.session()
			if err != nil {
				return c.viaDaemon(err, func(ctx context.Context, d *daemon.Conn) error {
					abs, err := filepath.Abs(dir)
					if err != nil {
						return err
					}
					var res daemon.SaveResult
					if err := d.Call(ctx, "save", map[string]string{"id": a[0], "dir": abs}, &res); err != nil {
						var de *daemon.Error
						if errors.As(err, &de) && de.Code == daemon.CodeDamaged {
							return fmt.Errorf("%w (nothing was saved: the file on the store is not the one the message describes)", err)
						}
						return err
					}
					return c.saved(res.Path, rename, res.File.Size)
				})
			}
			defer done()
			_, info, err := cl.Attachment(a[0])
			if err != nil {
				return err
			}
			bar := c.progressBar("downloading "+terminalSafe(info.Name), info.Size)
			path, err := cl.SaveAttachment(ctx, a[0], dir, bar.add)
			bar.done(err)
			if errors.Is(err, deaddrop.ErrDamaged) {
				return fmt.Errorf("%w (nothing was saved: the file on the store is not the one the message describes)", err)
			}
			if err != nil {
				return fmt.Errorf("%w (nothing was saved under the file's name; 'deaddrop save' again resumes)", err)
			}
			return c.saved(path, rename, info.Size)
		},
	}
	cmd.Flags().StringVar(&out, "out", ".", "directory to save into (the sender's file name, made unique), or a new file's path")
	return cmd
}

// saved renames a saved file to the path --out named (if any) and says
// where it is.
func (c *cli) saved(path, rename string, size int64) error {
	if rename != "" {
		// A hard link never replaces an existing file.
		if err := os.Link(path, rename); err != nil {
			return fmt.Errorf("saved as %s, but not as %s: %w", path, rename, err)
		}
		os.Remove(path)
		path = rename
	}
	fmt.Fprintf(c.out, "saved %s (%d bytes, SHA-256 verified)\n", path, size)
	return nil
}

// formatAttachment describes a message's file for read, history and chat.
func formatAttachment(m deaddrop.Message) string {
	info, err := deaddrop.AttachmentOf(m)
	if err != nil {
		return "[a file whose description is damaged: " + terminalSafe(err.Error()) + "]"
	}
	if info == nil {
		return ""
	}
	return fmt.Sprintf("[file %s, %s, %s; deaddrop save %s]", terminalSafe(info.Name), formatSize(info.Size),
		terminalSafe(info.MediaType), deaddrop.MessageID(m))
}

func formatSize(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}

// bar is a progress bar on standard error, drawn only when it is a
// terminal (a script's stderr gets nothing).
type bar struct {
	w     io.Writer
	label string
	total int64
	n     atomic.Int64
	mu    gosync.Mutex
	last  time.Time
}

func (c *cli) progressBar(label string, total int64) *bar {
	b := &bar{label: label, total: total}
	if f, ok := c.err.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		b.w = f
	}
	return b
}

// add counts n more bytes done; safe from several goroutines.
func (b *bar) add(n int64) {
	done := b.n.Add(n)
	if b.w == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if time.Since(b.last) < 100*time.Millisecond && done < b.total {
		return
	}
	b.last = time.Now()
	b.draw(done)
}

func (b *bar) draw(done int64) {
	const width = 30
	frac := 1.0
	if b.total > 0 {
		frac = min(1, float64(done)/float64(b.total))
	}
	fill := int(frac * width)
	fmt.Fprintf(b.w, "\r%s [%s%s] %3.0f%% %s", b.label, strings.Repeat("=", fill), strings.Repeat(" ", width-fill), frac*100, formatSize(done))
}

// done ends the bar's line.
func (b *bar) done(err error) {
	if b.w == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if err == nil {
		b.draw(b.total)
	}
	fmt.Fprintln(b.w)
}
