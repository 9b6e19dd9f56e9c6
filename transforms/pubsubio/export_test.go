package pubsubio

// LeaseHighWater returns the most messages and bytes this process's lease
// book of the subscription has kept leased at once since the last call,
// which resets it to what the book holds now. 0, 0 if no Read of the
// subscription has run here.
func LeaseHighWater(subscription string) (messages int, bytes int64) {
	b := existingLeaseBook(subscription)
	if b == nil {
		return 0, 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	messages, bytes = b.peak, b.peakBytes
	b.peak, b.peakBytes = len(b.byAckID), b.bytes
	return messages, bytes
}
