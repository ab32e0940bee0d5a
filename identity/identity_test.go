package identity

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/opencontainers/go-digest"
)

// The expected values were computed outside Go with
// printf '%s %s' PARENT DIFFID | sha256sum.
var (
	diffA  = digest.Digest("sha256:a6ef9ee01b6e6fe0290edaa251dcbb4a57be2bbb99daacbae819740306a36849")
	diffB  = digest.Digest("sha256:59f3889f00ee57dc06d0cc335422f015854a7faaa788169a7e48a7ba37a69a70")
	diffC  = digest.Digest("sha256:5f579521f536298e8c7f1ea4df68277f8b3c058eba7a360b66819300e9cc1100")
	chainB = digest.Digest("sha256:411dc06aff82bb27d2578c0b9c5f3bd9482cae87b1fdd1a45e230b4f062feb1e")
	chainC = digest.Digest("sha256:41d38f12fdec955678574a3eb7e674cd771a36c447fbe4bd207a48acd522d2ba")
)

func TestChainID(t *testing.T) {
	tests := []struct {
		name    string
		diffIDs []digest.Digest
		want    digest.Digest
	}{
		{"empty", nil, ""},
		{"one layer", []digest.Digest{diffA}, diffA},
		{"two layers", []digest.Digest{diffA, diffB}, chainB},
		{"three layers", []digest.Digest{diffA, diffB, diffC}, chainC},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := ChainID(tc.diffIDs); got != tc.want {
				t.Errorf("ChainID = %s, want %s", got, tc.want)
			}
		})
	}
}

func TestChainIDs(t *testing.T) {
	got := ChainIDs([]digest.Digest{diffA, diffB, diffC})
	want := []digest.Digest{diffA, chainB, chainC}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ChainIDs (-want +got):\n%s", diff)
	}
	if got := ChainIDs(nil); len(got) != 0 {
		t.Errorf("ChainIDs(nil) = %v, want empty", got)
	}
}
