// Package remote pulls images from registries that speak the OCI
// distribution protocol (Docker Hub, ghcr.io, Docker Distribution and
// others) into a content store, and optionally unpacks them while they
// download.
//
// The protocol's authentication (the /v2/ ping, HTTP basic auth and the
// bearer token exchange) is go-containerregistry's transport. On top of it
// [Pull] sends plain GET requests for manifests and blobs, so that it can
// resume a blob with an HTTP Range request and write it straight into a
// [content.Writer]:
//
//  1. GET /v2/<repository>/manifests/<tag or digest>. An index or Docker
//     manifest list is stored, and the entry for the platform is fetched
//     by digest. Docker schema 1 manifests are rejected.
//  2. GET /v2/<repository>/blobs/<digest> for the config, then for each
//     layer, several at once. Each blob is written to the ingest
//     "remote-<digest>", which every pull of that blob shares, so a second
//     pull waits for the first to commit it. A pull that was killed or cut
//     off leaves the bytes it got, and the next one resumes them with
//     "Range: bytes=<offset>-".
//  3. Commit each blob, which checks its size and digest, then record the
//     image under its full reference in the image store.
//
// Credentials come from [WithCredentials], or else from the Docker config
// file (~/.docker/config.json, or config.json in $DOCKER_CONFIG) through
// go-containerregistry's default keychain, which also runs the credential
// helpers that file names. Credentials are never logged.
package remote
