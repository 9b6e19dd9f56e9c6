package main

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// rewriteWidth is the longest status line rewritten in place, the width
// of the narrowest common terminal: a line that wraps cannot be rewritten
// with a carriage return, so a longer one goes on a line of its own.
const rewriteWidth = 80

// progress prints the run's stages, each line with the time since the
// start. Status lines (update) follow each other as plain lines, or, when
// the output is a terminal, rewrite one line in place with a carriage
// return (no other control codes).
type progress struct {
	out     io.Writer
	tty     bool
	start   time.Time
	pending int // length of the status line on screen, 0 for none
}

func newProgress(out io.Writer) *progress {
	p := &progress{out: out, start: time.Now()}
	if f, ok := out.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			p.tty = true
		}
	}
	return p
}

func (p *progress) elapsed() time.Duration {
	return time.Since(p.start).Round(100 * time.Millisecond)
}

func (p *progress) stamp(line string) string {
	return fmt.Sprintf("[%5.1fs] %s", time.Since(p.start).Seconds(), line)
}

// say prints a line that stays.
func (p *progress) say(format string, args ...any) {
	p.clear()
	fmt.Fprintln(p.out, p.stamp(fmt.Sprintf(format, args...)))
}

// update prints a status line, which the next one replaces on a terminal.
func (p *progress) update(format string, args ...any) {
	line := p.stamp(fmt.Sprintf(format, args...))
	width := utf8.RuneCountInString(line)
	if !p.tty || width > rewriteWidth {
		p.clear()
		fmt.Fprintln(p.out, line)
		return
	}
	pad := max(0, p.pending-width)
	fmt.Fprint(p.out, "\r"+line+strings.Repeat(" ", pad))
	p.pending = width
}

// clear ends a pending status line, so that what follows starts a line.
func (p *progress) clear() {
	if p.pending > 0 {
		fmt.Fprintln(p.out)
		p.pending = 0
	}
}

// thousands formats n with a comma between groups of three digits.
func thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}
