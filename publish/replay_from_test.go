package publish_test

import (
	"strings"
	"testing"
	"time"

	"github.com/chronicler-dev/chronicler/publish"
	"github.com/chronicler-dev/chronicler/publish/kafka"
)

func TestParseReplayFrom(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want publish.ReplayFrom
		ok   bool
	}{
		{"start", publish.ReplayFrom{Start: true}, true},
		{"123456", publish.ReplayFrom{Position: 123456}, true},
		{"2025-01-31T10:00:00Z", publish.ReplayFrom{Time: time.Date(2025, 1, 31, 10, 0, 0, 0, time.UTC)}, true},
		{"2025-01-31T12:00:00+02:00", publish.ReplayFrom{Time: time.Date(2025, 1, 31, 10, 0, 0, 0, time.UTC)}, true},
		{"yesterday", publish.ReplayFrom{}, false},
		{"-5", publish.ReplayFrom{}, false},
		{"", publish.ReplayFrom{}, false},
	} {
		got, err := publish.ParseReplayFrom(tc.in)
		if (err == nil) != tc.ok || got.Start != tc.want.Start || got.Position != tc.want.Position || !got.Time.Equal(tc.want.Time) {
			t.Errorf("ParseReplayFrom(%q) = %+v, %v; want %+v, ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func TestNewCollectsConfigErrors(t *testing.T) {
	_, err := publish.New(publish.Config{Kafka: kafka.ClusterConfig{Brokers: []string{"nohostport"}, Compression: "brotli", SASL: kafka.SASLConfig{Mechanism: "KERBEROS"}}, BatchRecords: -1})
	if err == nil {
		t.Fatal("New accepted an invalid config")
	}
	// One error per problem, each naming its setting.
	for _, want := range []string{"publish.store", "publish.rules", "kafka.brokers[0]", "kafka.compression", "kafka.sasl.mechanism", "publish.batchRecords"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %s:\n%v", want, err)
		}
	}
}
