package rotation

import (
	"context"
	"errors"

	"github.com/flowkey/flowkey/internal/graph"
	"github.com/flowkey/flowkey/internal/secretdoc"
)

// The methods below lend the rotation's own reading, resolving and
// verification to the operator commands (internal/operator), so that a
// status or resync judges a phone number exactly as the steps do.

// LoadDocument reads and strictly parses one version of the secret. An
// empty versionID reads the version that holds stage. A version without a
// value fails with an error that wraps *types.ResourceNotFoundException.
func (r *Rotator) LoadDocument(ctx context.Context, secretID, versionID, stage string) (*secretdoc.Document, error) {
	return r.loadDocument(ctx, secretID, versionID, stage)
}

// GraphAuth resolves the Graph token and version for cfg as every step
// does: the document's access_token_secret_id and graph_api_version first,
// then the function's defaults.
func (r *Rotator) GraphAuth(ctx context.Context, cfg secretdoc.Config) (graph.Auth, error) {
	return r.authFor(ctx, &invocation{log: r.opts.Logger}, cfg)
}

// ResolveNumbers returns the numbers cfg covers: phone_number_ids as they
// stand, or the WABA's numbers (all pages, listed now) narrowed by the
// include and exclude lists. Unlike a step it does not fail when nothing
// is left, so that a caller can report it.
func (r *Rotator) ResolveNumbers(ctx context.Context, auth graph.Auth, cfg secretdoc.Config) (Numbers, error) {
	return r.resolveNumbers(ctx, auth, cfg)
}

// Verify checks each number as testSecret does: it polls until Meta holds
// want with status VALID (or the verification deadline passes) and proves
// that want's private key decrypts what is encrypted with the key Meta
// returned. Results are in the order of numbers.
func (r *Rotator) Verify(ctx context.Context, auth graph.Auth, numbers []string, want *secretdoc.Key) []NumberResult {
	inv := &invocation{log: r.opts.Logger.With("caller", "operator")}
	if want == nil || want.Pair() == nil {
		out := make([]NumberResult, len(numbers))
		for i, id := range numbers {
			out[i] = NumberResult{PhoneNumberID: id, Err: errors.New("no key to verify against")}
		}
		return out
	}
	return r.verify(ctx, inv, auth, numbers, want)
}
