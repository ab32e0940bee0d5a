package archive

import (
	"errors"
	"testing"
	"time"

	"github.com/strata-containers/strata/archive/tartest"
	"github.com/strata-containers/strata/internal/layercases"
)

// runCases applies each case's layers three times. The first two apply
// them in sequence into one plain directory (native mode), with every
// file written on the calling goroutine and then with four file workers.
// The third applies them as overlay uppers, each over the ones before,
// with the default workers. A case that succeeds
// must give the same tree, directory mtimes included, in both plain
// directories and in the mounted overlay, and its check runs on the
// first plain directory and the overlay. A case with WantErr expects that
// class from the last layer in every mode, and its check runs on the
// first native root.
func runCases(t *testing.T, cases []layercases.Case) {
	requireRoot(t)
	for _, tc := range cases {
		t.Run(tc.Name, func(t *testing.T) {
			s := newSandbox(t)
			defer s.Check(t)
			ls := tarLayers(t, s, tc)
			native, nerr := applyNative(t, s, ls, "snap-native", WithFileWorkers(0))
			workers, werr := applyNative(t, s, ls, "snap-workers", WithFileWorkers(4))
			uppers, oerr := applyOverlay(t, s, ls)

			if tc.WantErr != nil {
				if !errors.Is(nerr, tc.WantErr) {
					t.Errorf("native apply: error %v, want %v", nerr, tc.WantErr)
				}
				if !errors.Is(werr, tc.WantErr) {
					t.Errorf("native apply with workers: error %v, want %v", werr, tc.WantErr)
				}
				if !errors.Is(oerr, tc.WantErr) {
					t.Errorf("overlay apply: error %v, want %v", oerr, tc.WantErr)
				}
				wantErrorNames(t, "native", nerr, tc.ErrPath)
				wantErrorNames(t, "overlay", oerr, tc.ErrPath)
				if tc.Check != nil {
					tc.Check(t, s, native)
				}
				return
			}
			if nerr != nil {
				t.Fatalf("native apply: %v", nerr)
			}
			if werr != nil {
				t.Fatalf("native apply with workers: %v", werr)
			}
			if oerr != nil {
				t.Fatalf("overlay apply: %v", oerr)
			}
			merged := mountLayers(t, s, uppers)
			// Checks run first: reading the trees to compare them changes
			// atimes.
			if tc.Check != nil {
				t.Run("native", func(t *testing.T) { tc.Check(t, s, native) })
				t.Run("overlay", func(t *testing.T) { tc.Check(t, s, merged) })
			}
			compareTrees(t, native, merged)
			compareTrees(t, native, workers)
		})
	}
}

func TestApplyBreakout(t *testing.T)      { runCases(t, layercases.Breakout()) }
func TestApplyWhiteout(t *testing.T)      { runCases(t, layercases.Whiteout()) }
func TestApplyTypeChange(t *testing.T)    { runCases(t, layercases.TypeChange()) }
func TestApplyHardlinkLower(t *testing.T) { runCases(t, layercases.HardlinkLower()) }
func TestApplyMetadata(t *testing.T)      { runCases(t, layercases.Metadata()) }
func TestApplyTarFormat(t *testing.T)     { runCases(t, layercases.TarFormat()) }
func TestApplySpecialFiles(t *testing.T)  { runCases(t, layercases.SpecialFiles()) }

// TestApplyAccessTime checks that a PAX atime is applied. It is not in the
// shared table because snapshotters read files after the apply, which
// moves their atimes.
func TestApplyAccessTime(t *testing.T) {
	requireRoot(t)
	root, _, err := applyBytes(t, tartest.Tar(t,
		file("f", "", mtime(1000), tartest.AccessTime(time.Unix(2000, 5))),
		file("g", "", mtime(3000)),
	))
	if err != nil {
		t.Fatalf("apply: %v", err)
	}
	st, _ := lstat(t, root, "f")
	if st.Atim.Sec != 2000 || st.Atim.Nsec != 5 {
		t.Errorf("f: atime %d.%09d, want 2000.000000005", st.Atim.Sec, st.Atim.Nsec)
	}
	st, _ = lstat(t, root, "g")
	if st.Atim.Sec != 3000 || st.Atim.Nsec != 0 {
		t.Errorf("g: atime %d.%09d, want the mtime 3000", st.Atim.Sec, st.Atim.Nsec)
	}
}
