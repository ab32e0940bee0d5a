// Package identity computes the chain IDs that name a stack of layers.
//
// A layer's diff ID is the digest of its uncompressed tar. The chain ID of
// the bottom layer is its diff ID, and the chain ID of each layer above is
// the sha256 digest of the text "<parent chain ID> <diff ID>", as the OCI
// image specification's config document defines it. A chain ID therefore
// names a layer together with everything below it, which makes it the key
// for an unpacked snapshot.
package identity

import (
	// Register sha256 for digest.FromString.
	_ "crypto/sha256"

	"github.com/opencontainers/go-digest"
)

// ChainID returns the chain ID of the top of the stack diffIDs, bottom layer
// first. It returns "" for an empty stack.
func ChainID(diffIDs []digest.Digest) digest.Digest {
	var chain digest.Digest
	for i, d := range diffIDs {
		if i == 0 {
			chain = d
			continue
		}
		chain = digest.FromString(chain.String() + " " + d.String())
	}
	return chain
}

// ChainIDs returns the chain ID of every layer in diffIDs, bottom layer
// first: ChainIDs(d)[i] == ChainID(d[:i+1]).
func ChainIDs(diffIDs []digest.Digest) []digest.Digest {
	out := make([]digest.Digest, len(diffIDs))
	for i, d := range diffIDs {
		if i == 0 {
			out[i] = d
			continue
		}
		out[i] = digest.FromString(out[i-1].String() + " " + d.String())
	}
	return out
}
