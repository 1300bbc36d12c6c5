package mix

import (
	"time"
)

// Params are the Loopix parameters, in one place. The defaults favour a chat
// that feels live on a small network; the latency they imply is
// documented with DefaultParams.
type Params struct {
	// MeanHopDelay is the mean of the exponential delay each mix holds a
	// packet (1/µ in Loopix).
	MeanHopDelay time.Duration
	// SendInterval is the mean time between a client's packets (1/λP): a
	// real request when one waits, else a drop cover packet.
	SendInterval time.Duration
	// LoopInterval is the mean time between a client's loop cover packets
	// (1/λL).
	LoopInterval time.Duration
	// MixLoopInterval is the mean time between a mix's own loops (1/λM).
	MixLoopInterval time.Duration
	// ReplyTimeout is how long a client waits for a reply before sending
	// the request again (a node that died costs a retry, not the message).
	ReplyTimeout time.Duration
	// Retries bounds the resends of one request.
	Retries int
}

// DefaultParams: 20 ms mean per hop, a packet every 20 ms (50/s), loops every
// 200 ms (Nym's client defaults). A request crosses 3 mixes out and 3 back,
// so its expected round trip is 6 × 20 ms of mixing plus the wait for the
// client's next Poisson send slot, whose mean is a whole send interval (the
// exponential is memoryless): ≈ 140 ms on an idle loopback network.
func DefaultParams() Params {
	return Params{
		MeanHopDelay:    20 * time.Millisecond,
		SendInterval:    20 * time.Millisecond,
		LoopInterval:    200 * time.Millisecond,
		MixLoopInterval: 200 * time.Millisecond,
		ReplyTimeout:    5 * time.Second,
		Retries:         4,
	}
}

// PredictedRTT is the mean round trip these parameters imply for one
// request on an idle network: six delaying hops and the wait for a send slot.
func (p Params) PredictedRTT() time.Duration {
	return 6*p.MeanHopDelay + p.SendInterval
}

// exp draws an exponentially distributed duration with the given mean.
func exp(mean time.Duration) time.Duration {
	if mean <= 0 {
		return 0
	}
	return time.Duration(csprng.ExpFloat64() * float64(mean))
}
