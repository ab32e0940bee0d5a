// Package e2e tests the strata command as scripts drive it: a built binary,
// a fresh store root and real images made by umoci, mmdebstrap, buildah and
// skopeo. It has no code outside its tests.
package e2e
