package repository

import (
	"testing"

	"github.com/kopia/kopia/repo/splitter"

	"github.com/lifeboat-backup/lifeboat/internal/buzhash"
)

func TestBuzhashSplittersReplaced(t *testing.T) {
	for name, avg := range buzhashSizes {
		s := splitter.GetFactory(name)()
		if _, ok := s.(*buzhash.Splitter); !ok {
			t.Errorf("%s: kopia's object writer would use %T", name, s)
		}
		if s.MaxSegmentSize() != 2*avg {
			t.Errorf("%s: max segment %d, want %d", name, s.MaxSegmentSize(), 2*avg)
		}
		s.Close()
	}
	if _, ok := splitter.GetFactory(contentSplitter)().(*buzhash.Splitter); !ok {
		t.Errorf("new repositories' splitter %s is kopia's", contentSplitter)
	}
}
