package repository

import (
	"testing"
	"time"
)

func TestRecordDrill(t *testing.T) {
	opts := newTestOptions(t, "pw-drill")
	r := mustInit(t, opts)
	dir := t.TempDir()
	p1 := snapshotDir(t, r, "volume/a", dir)
	p2 := snapshotDir(t, r, "volume/a", dir)
	t0 := time.Now().UTC().Truncate(time.Millisecond)
	type detail struct {
		Checks []string `json:"checks"`
	}
	for _, d := range []DrillRecord{
		{Point: p1.ID, Unit: "volume/a", Time: t0, Passed: false, RTOMS: 0, Detail: detail{Checks: []string{"start"}}},
		{Point: p1.ID, Unit: "volume/a", Time: t0.Add(time.Minute), Passed: true, RTOMS: 4321, Detail: detail{Checks: []string{"start", "probe"}}},
	} {
		if err := r.RecordDrill(t.Context(), d); err != nil {
			t.Fatal(err)
		}
	}
	// Another process opening the repository sees them.
	r2, err := Open(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close(t.Context())
	points, err := r2.List(t.Context(), "volume/a")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]*DrillSummary{}
	for _, p := range points {
		got[p.ID] = p.LastDrill
	}
	if d := got[p1.ID]; d == nil || !d.Passed || d.RTOMS != 4321 || !d.Time.Equal(t0.Add(time.Minute)) {
		t.Fatalf("last drill of %s: %+v, want the newer, passed one", p1.ID, d)
	}
	if d := got[p2.ID]; d != nil {
		t.Fatalf("a point never drilled shows drill %+v", d)
	}
	var det detail
	s, ok, err := r2.LastDrill(t.Context(), p1.ID, &det)
	if err != nil || !ok || !s.Passed || len(det.Checks) != 2 {
		t.Fatalf("LastDrill: %+v %v %v %+v", s, ok, err, det)
	}
	if _, ok, err := r2.LastDrill(t.Context(), p2.ID, &det); ok || err != nil {
		t.Fatalf("LastDrill of a point never drilled: %v %v", ok, err)
	}
}
