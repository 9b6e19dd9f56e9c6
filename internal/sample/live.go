package sample

import (
	"fmt"
	"iter"
	"time"
)

// LiveConfig describes a live stream: the synthetic stream of Synthetic,
// but starting at a given moment, at a given rate, and with events that
// arrive after their minute has closed. It is what the streaming job's
// tests, local run and benchmark publish: event times close to the wall
// clock, so the job's watermark, early firings and lateness work as they
// do in production.
type LiveConfig struct {
	// Seed selects the stream; the same LiveConfig gives the same messages.
	Seed int64
	// Start is the publish time of the stream's beginning.
	Start time.Time
	// Rate is the average number of messages a second of publish time
	// (default 200).
	Rate int
	// LateShare is the share of events published LateMin to LateMax after
	// their event time (defaults 0.02, 65 s and 85 s: after the end of
	// their one-minute window, and their window closes, in an allowed
	// lateness of 2 minutes, at least 35 s after they are published, well
	// clear of the streaming job's close margin on Prism).
	// Negative for none. About 1% of events are, besides, published
	// hours after their event time, as in Synthetic.
	LateShare        float64
	LateMin, LateMax time.Duration
}

func (c LiveConfig) withDefaults() LiveConfig {
	if c.Rate == 0 {
		c.Rate = 200
	}
	if c.LateShare == 0 {
		c.LateShare = 0.02
	}
	if c.LateMin == 0 && c.LateMax == 0 {
		c.LateMin, c.LateMax = 65*time.Second, 85*time.Second
	}
	return c
}

// Validate reports whether the configuration describes a stream.
func (c LiveConfig) Validate() error {
	c = c.withDefaults()
	switch {
	case c.Start.IsZero():
		return fmt.Errorf("sample: LiveConfig.Start is not set")
	case c.Rate < 1 || c.Rate > 1_000_000:
		return fmt.Errorf("sample: LiveConfig.Rate %d is outside 1 to 1,000,000 messages a second", c.Rate)
	case c.LateShare > 0.5:
		return fmt.Errorf("sample: LiveConfig.LateShare %v is above 0.5", c.LateShare)
	case c.LateMin < 0 || c.LateMax < c.LateMin:
		return fmt.Errorf("sample: LiveConfig.LateMin %v and LateMax %v are not a range", c.LateMin, c.LateMax)
	}
	return nil
}

// Live returns an iterator over n messages of the live stream cfg
// describes, in publish order. Message.PublishTime is when the message is
// meant to be published: a publisher that keeps to it replays the stream
// in real time. As in Synthetic, about 3% are duplicates (redeliveries
// keep their message id: published again they get a new one) and 1% are
// bad records; Message.Kind says which. A redelivery's PublishTime is when
// it arrives again. It panics if cfg is not valid.
func Live(cfg LiveConfig, n int) iter.Seq[Message] {
	if err := cfg.Validate(); err != nil {
		panic(err)
	}
	cfg = cfg.withDefaults()
	return func(yield func(Message) bool) {
		s := newSynth(cfg.Seed)
		mean := int64(time.Second/time.Microsecond) / int64(cfg.Rate)
		s.t = cfg.Start.UnixMicro() - mean
		s.stepMin, s.stepMax = mean/5, mean*9/5
		if cfg.LateShare > 0 {
			s.lateShare = cfg.LateShare
			s.lateMin, s.lateMax = cfg.LateMin.Microseconds(), cfg.LateMax.Microseconds()
		}
		for range n {
			m := s.next()
			m.PublishTime = s.t // a redelivery is received again now
			if !yield(m) {
				return
			}
		}
	}
}
