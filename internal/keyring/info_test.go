package keyring_test

import (
	"context"
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/flowkey/flowkey/internal/keypair"
	"github.com/flowkey/flowkey/internal/secretdoc"
)

// A fleet's endpoint reads a tenant's tags, deletion and app secret from
// the refresh that loads its keys: no call of its own.
func TestInfoReportsTagsDeletionAndTheCurrentAppSecret(t *testing.T) {
	f := newFixture(t)
	if i := f.ring.Info(); i.Loaded || i.CurrentRead {
		t.Fatalf("before a refresh: %+v", i)
	}
	d := secretdoc.Document{SchemaVersion: 1, Config: secretdoc.Config{PhoneNumberIDs: []string{"1"}, AppSecretID: "flowkey/app-secrets/acme"},
		Key: secretdoc.NewKey(&keypair.Generated{Pair: pairs()[0], Method: keypair.MethodCrypto}, testNow)}
	b, err := d.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	f.sm.Put(f.s, "v1", aws.String(string(b)), "AWSCURRENT")
	f.put("v0", pairs()[1], "AWSPREVIOUS")
	f.s.Tags = map[string]string{"flowkey:fleet": "prod", "flowkey:tenant": "acme"}
	if err := f.ring.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	i := f.ring.Info()
	if !i.Loaded || !i.CurrentRead || i.AppSecretID != "flowkey/app-secrets/acme" || i.Deleted || i.Tags["flowkey:fleet"] != "prod" {
		t.Errorf("info %+v", i)
	}
	i.Tags["flowkey:fleet"] = "changed"
	if f.ring.Info().Tags["flowkey:fleet"] != "prod" {
		t.Error("Info hands out the ring's own map")
	}
	// A configuration-only AWSCURRENT still names its app secret.
	cfgOnly, _ := (&secretdoc.Document{SchemaVersion: 1, Config: secretdoc.Config{PhoneNumberIDs: []string{"1"}}}).Marshal()
	f.sm.Put(f.s, "v2", aws.String(string(cfgOnly)), "AWSCURRENT")
	f.s.DeletedDate = aws.Time(testNow)
	f.clock.Advance(ttl)
	if err := f.ring.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if i := f.ring.Info(); !i.CurrentRead || i.AppSecretID != "" || !i.Deleted {
		t.Errorf("after the change: %+v", i)
	}
}

// A secret that does not exist is ResourceNotFoundException in Refresh's
// error, so that a fleet's endpoint can tell an unknown tenant apart.
func TestAMissingSecretIsNotFound(t *testing.T) {
	f := newFixture(t)
	f.sm.Delete(secretName)
	err := f.ring.Refresh(context.Background())
	var nf *types.ResourceNotFoundException
	if !errors.As(err, &nf) || f.ring.Info().Loaded {
		t.Errorf("got %v", err)
	}
}
