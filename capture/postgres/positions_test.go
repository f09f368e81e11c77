package postgres

import (
	"testing"

	"github.com/chronicler-dev/chronicler/mapping/contract"
)

// TestPositionsConfirmOnlyAckedPrefix walks the confirmation rules: an
// unacked transaction holds every later one back, heartbeats need no ack,
// and a keepalive's WAL end is confirmed only once nothing is pending.
func TestPositionsConfirmOnlyAckedPrefix(t *testing.T) {
	p := positions{confirmed: 100}
	p.committed(110, 120, true)  // T1
	p.committed(130, 140, false) // heartbeat
	p.committed(150, 160, true)  // T2
	p.walEnd(500)
	steps := []struct {
		ack  contract.LSN
		want contract.LSN
	}{
		{0, 100},   // nothing acked
		{109, 100}, // below T1's commit
		{110, 140}, // T1 acked; heartbeat follows for free; T2 holds the WAL end back
		{150, 500}, // T2 acked; nothing pending: the idle WAL end
		{150, 500}, // repeated ack changes nothing
	}
	for i, s := range steps {
		p.ack(s.ack)
		if got := p.advance(); got != s.want {
			t.Fatalf("step %d: ack(%d) confirmed %d; want %d", i, s.ack, got, s.want)
		}
	}
	p.committed(600, 610, true)
	p.walEnd(700)
	if got := p.advance(); got != 500 {
		t.Fatalf("a pending transaction let the WAL end through: confirmed %d", got)
	}
}
