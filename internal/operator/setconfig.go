package operator

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/google/uuid"

	"github.com/flowkey/flowkey/internal/fanout"
	"github.com/flowkey/flowkey/internal/keystate"
	"github.com/flowkey/flowkey/internal/rotation"
	"github.com/flowkey/flowkey/internal/secretdoc"
)

// Outcomes of set-config besides OutcomeDryRun.
const (
	OutcomeUpdated   = "updated"   // a new AWSCURRENT version holds the new configuration
	OutcomeUnchanged = "unchanged" // AWSCURRENT already holds it; nothing written (but a half-done set-config finished)
	OutcomeRefused   = "refused"   // nothing written: see the message
)

// PreviousKeyStage marks, during a set-config, the version that holds
// AWSPREVIOUS before it: writing the new AWSCURRENT version makes Secrets
// Manager move AWSPREVIOUS to the old current version, which holds the
// same key as the new one, and set-config moves it back to this version,
// the one with the previous key. A set-config that stopped half way leaves
// the label, and the next set-config finishes the move.
const PreviousKeyStage = "FLOWKEY_SET_CONFIG_PREVIOUS"

// SetConfigReport is the result of the set-config command.
type SetConfigReport struct {
	Command string `json:"command"` // "set-config"
	// OK is true when AWSCURRENT holds the new configuration (for a dry
	// run: when it would).
	OK        bool   `json:"ok"`
	Outcome   string `json:"outcome"` // "updated", "unchanged", "dry_run" or "refused"
	DryRun    bool   `json:"dry_run"`
	SecretARN string `json:"secret_arn"`
	// PreviousVersionID was AWSCURRENT before; VersionID is AWSCURRENT
	// after (for a dry run: the version it would write).
	PreviousVersionID string `json:"previous_version_id"`
	VersionID         string `json:"version_id,omitempty"`
	// Fingerprint is the key both versions hold: set-config never changes
	// the key. "" for a configuration-only secret.
	Fingerprint string           `json:"fingerprint_sha256"`
	Config      secretdoc.Config `json:"config"`
	// Leaving are the numbers the old configuration covers and the new one
	// does not, with what Meta answers for each now (read-only): flowkey no
	// longer writes to them, so each keeps that key.
	Leaving []NumberStatus `json:"numbers_leaving"`
	// Joining are the numbers the new configuration adds: they get the key
	// at the next rotation, or from resync.
	Joining []string `json:"numbers_joining"`
	Message string   `json:"message"`

	custodyChange string // a sentence for Message when key_custody changes
}

func (o *Operator) setConfig(ctx context.Context, log *slog.Logger, secretID, raw string, dryRun bool) (*SetConfigReport, error) {
	// ParseCommand validated it; a caller that built the Command by hand
	// gets the same errors.
	newCfg, err := parseConfig(raw)
	if err != nil {
		return nil, err
	}
	sec, err := o.describe(ctx, secretID)
	if err != nil {
		return nil, err
	}
	in, err := o.readVersions(ctx, sec)
	if err != nil {
		return nil, err
	}
	cur := in.current
	r := &SetConfigReport{Command: CommandSetConfig, DryRun: dryRun, SecretARN: sec.ARN, PreviousVersionID: in.versions.Current.VersionID,
		Fingerprint: in.versions.Current.Fingerprint, Config: newCfg, Leaving: []NumberStatus{}, Joining: []string{}}
	if in.inProgress {
		r.Outcome = OutcomeRefused
		r.Message = fmt.Sprintf("nothing written: a rotation is incomplete (AWSPENDING is on version %s, AWSCURRENT on %s). A version written now would make Secrets Manager "+
			"abandon that rotation and drop AWSPENDING, although its key may be at Meta. Finish it first with {\"command\":\"rotate\"} (it resumes it), then send set-config again",
			in.versions.Pending.VersionID, r.PreviousVersionID)
		log.Warn("set-config refused", "reason", "rotation incomplete", "pending_version", in.versions.Pending.VersionID)
		return r, nil
	}
	if cur.Config.Custody() == secretdoc.CustodyKMS && newCfg.KeyCustody == "" {
		// Every other field left out means its default too, but this
		// default would move the private key out of KMS at the next
		// rotation: that must be said, not implied.
		r.Outcome = OutcomeRefused
		r.Message = `nothing written: the new configuration leaves out key_custody, and the secret's is "kms": without it the next rotation would keep the new private key ` +
			`in the secret instead of in KMS. Add "key_custody":"kms" to keep KMS custody, or "key_custody":"secrets_manager" to leave it`
		log.Warn("set-config refused", "reason", "key_custody left out of a KMS-custody secret's configuration")
		return r, nil
	}
	if from, to := cur.Config.Custody(), newCfg.Custody(); from != to {
		r.custodyChange = fmt.Sprintf("Key custody changes from %s to %s: the current key stays where it is, and the next rotation creates its new key in %s custody.", from, to, to)
	}
	covered, err := o.numberChanges(ctx, in, newCfg, r)
	if err != nil {
		return nil, err
	}
	if covered == 0 {
		// A rotation step refuses a WABA with nothing left to write to.
		r.Outcome = OutcomeRefused
		r.Message = fmt.Sprintf("nothing written: WABA %s has no phone numbers left after the include and exclude lists of the new configuration, so every rotation would fail; "+
			"fix: check config.waba_id and the lists", newCfg.WABAID)
		return r, nil
	}
	body, err := (&secretdoc.Document{SchemaVersion: secretdoc.SchemaVersion, Config: newCfg, Key: cur.Key}).Marshal()
	if err != nil {
		return nil, fmt.Errorf("encode the new version: %w", err)
	}
	same := sameConfig(cur.Config, newCfg)
	version := configVersionID(r.PreviousVersionID, newCfg)
	switch {
	case dryRun && same:
		r.OK, r.Outcome, r.VersionID = true, OutcomeDryRun, r.PreviousVersionID
		r.Message = "dry run: AWSCURRENT already holds this configuration; nothing would be written"
		return r, nil
	case dryRun:
		r.OK, r.Outcome, r.VersionID = true, OutcomeDryRun, version
		r.Message = fmt.Sprintf("dry run: would write version %s as AWSCURRENT with this configuration and the same key %s, keep AWSPREVIOUS on the version with the previous key, "+
			"and leave AWSPENDING on no version. Nothing was written; send it without \"dry_run\" to do it. %s", version, short(r.Fingerprint), r.numbersMessage())
		return r, nil
	}
	// Finish a set-config that stopped half way before anything else: its
	// label says where AWSPREVIOUS belongs.
	if err := o.restorePrevious(ctx, log, sec.ARN); err != nil {
		return nil, err
	}
	if same {
		r.OK, r.Outcome, r.VersionID = true, OutcomeUnchanged, r.PreviousVersionID
		r.Message = "AWSCURRENT already holds this configuration; nothing was written. " + r.numbersMessage()
		return r, nil
	}
	if err := o.writeConfig(ctx, log, in, version, string(body)); err != nil {
		return nil, err
	}
	r.OK, r.Outcome, r.VersionID = true, OutcomeUpdated, version
	r.Message = fmt.Sprintf("wrote version %s as AWSCURRENT with the new configuration and the same key %s; AWSPREVIOUS stays on the version with the previous key, "+
		"and no version holds AWSPENDING, so the next rotation starts cleanly. %s", version, short(r.Fingerprint), r.numbersMessage())
	log.Info("configuration changed", "version_id", version, "previous_version", r.PreviousVersionID, "leaving", len(r.Leaving), "joining", len(r.Joining))
	return r, nil
}

// configVersionID derives the new version's ID from the current version
// and the new configuration, so a retried set-config writes the same
// version (PutSecretValue is idempotent per ClientRequestToken) instead of
// a second one. It is a UUIDv5: Secrets Manager wants 32 to 64 characters.
func configVersionID(currentVersion string, cfg secretdoc.Config) string {
	canonical, _ := json.Marshal(cfg) // a struct of strings: cannot fail
	ns := uuid.NewSHA1(uuid.NameSpaceURL, []byte("https://github.com/flowkey/flowkey/set-config"))
	return uuid.NewSHA1(ns, []byte(currentVersion+"\n"+string(canonical))).String()
}

func sameConfig(a, b secretdoc.Config) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

// numberChanges resolves the numbers of the old and the new configuration
// (each with its own token and Graph version), reads, read-only, what Meta
// holds for each number that leaves, and returns how many numbers the new
// configuration covers.
func (o *Operator) numberChanges(ctx context.Context, in *inspection, newCfg secretdoc.Config, r *SetConfigReport) (int, error) {
	oldAuth, err := o.state.Auth(ctx, in.current.Config)
	if err != nil {
		return 0, fmt.Errorf("the current configuration: %w", err)
	}
	oldNums, err := o.state.ResolveNumbers(ctx, oldAuth, in.current.Config)
	if err != nil {
		return 0, fmt.Errorf("the current configuration: %w", err)
	}
	newAuth, err := o.state.Auth(ctx, newCfg)
	if err != nil {
		return 0, fmt.Errorf("the new configuration: %w", err)
	}
	newNums, err := o.state.ResolveNumbers(ctx, newAuth, newCfg)
	if err != nil {
		return 0, fmt.Errorf("the new configuration: %w", err)
	}
	var leaving []string
	for _, id := range oldNums.IDs {
		if !slices.Contains(newNums.IDs, id) {
			leaving = append(leaving, id)
		}
	}
	for _, id := range newNums.IDs {
		if !slices.Contains(oldNums.IDs, id) {
			r.Joining = append(r.Joining, id)
		}
	}
	r.Leaving = fanout.Each(ctx, o.opts.Concurrency, leaving, func(ctx context.Context, id string) NumberStatus {
		return in.checkWith(ctx, o.graph, oldAuth, id)
	})
	if r.Leaving == nil {
		r.Leaving = []NumberStatus{}
	}
	return len(newNums.IDs), nil
}

func (r *SetConfigReport) numbersMessage() string {
	var parts []string
	if len(r.Leaving) > 0 {
		var ids []string
		for _, n := range r.Leaving {
			ids = append(ids, n.PhoneNumberID)
		}
		parts = append(parts, fmt.Sprintf("Leaving flowkey's management: %s. flowkey no longer reads or writes them, and each keeps the key it holds now (numbers_leaving). "+
			"One on the AWSCURRENT key keeps working until that key leaves the secret: it becomes AWSPREVIOUS at the next rotation and leaves at the one after, "+
			"so give those numbers another key before then.", strings.Join(ids, ", ")))
	}
	if len(r.Joining) > 0 {
		parts = append(parts, fmt.Sprintf("Joining: %s. They get the AWSCURRENT key at the next rotation, or now with {\"command\":\"resync\"}.", strings.Join(r.Joining, ", ")))
	}
	if len(parts) == 0 {
		parts = append(parts, "The phone numbers stay the same.")
	}
	if r.custodyChange != "" {
		parts = append(parts, r.custodyChange)
	}
	return strings.Join(parts, " ")
}

// writeConfig writes version as AWSCURRENT, crash-safely:
//  1. PreviousKeyStage marks the version that holds AWSPREVIOUS, the
//     previous key that WhatsApp clients may still encrypt to;
//  2. AWSPENDING, if a finished rotation left it on the current version,
//     is removed: it holds the current key, which the new version holds
//     too, and left there it would sit on AWSPREVIOUS's old version and
//     block every later rotation;
//  3. PutSecretValue writes the new version with AWSCURRENT (Secrets
//     Manager moves AWSPREVIOUS to the old current version);
//  4. restorePrevious moves AWSPREVIOUS back to the marked version and
//     drops the mark.
//
// A set-config run again after a stop at any point finishes the rest.
func (o *Operator) writeConfig(ctx context.Context, log *slog.Logger, in *inspection, version, body string) error {
	arn, curID := in.secret.ARN, in.versions.Current.VersionID
	// The labels as they are now, after restorePrevious.
	sec, err := o.describe(ctx, arn)
	if err != nil {
		return err
	}
	if now := sec.VersionWith(rotation.StageCurrent); now != curID {
		return fmt.Errorf("set-config: AWSCURRENT moved from version %s to %s while set-config ran (a rotation finished?); nothing was written; fix: send set-config again", curID, now)
	}
	if p := sec.VersionWith(rotation.StagePending); p != "" && p != curID {
		return fmt.Errorf("set-config: a rotation started while set-config ran (AWSPENDING on version %s); nothing was written; fix: let it finish, then send set-config again", p)
	}
	stage := func(label, moveTo, removeFrom string) error {
		u := &secretsmanager.UpdateSecretVersionStageInput{SecretId: aws.String(arn), VersionStage: aws.String(label)}
		if moveTo != "" {
			u.MoveToVersionId = aws.String(moveTo)
		}
		if removeFrom != "" {
			u.RemoveFromVersionId = aws.String(removeFrom)
		}
		if _, err := o.sm.UpdateSecretVersionStage(ctx, u); err != nil {
			return fmt.Errorf("set-config: move %s (to %q, from %q): %w; nothing else was changed yet, fix: send set-config again", label, moveTo, removeFrom, err)
		}
		return nil
	}
	if prev := sec.VersionWith(rotation.StagePrevious); prev != "" && prev != curID {
		if held := sec.VersionWith(PreviousKeyStage); held != prev {
			if err := stage(PreviousKeyStage, prev, held); err != nil {
				return err
			}
		}
	}
	if slices.Contains(sec.Stages[curID], rotation.StagePending) {
		if err := stage(rotation.StagePending, "", curID); err != nil {
			return err
		}
	}
	if _, err := o.sm.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{
		SecretId: aws.String(arn), ClientRequestToken: aws.String(version),
		SecretString: aws.String(body), VersionStages: []string{rotation.StageCurrent},
	}); err != nil {
		return fmt.Errorf("write version %s with the new configuration: %w; fix: send set-config again (it writes the same version)", version, err)
	}
	if sec, err = o.describe(ctx, arn); err != nil {
		return err
	}
	if now := sec.VersionWith(rotation.StageCurrent); now != version {
		// The version already existed (a retry), and Secrets Manager ignores
		// a repeated PutSecretValue, labels included.
		if err := stage(rotation.StageCurrent, version, now); err != nil {
			return err
		}
	}
	return o.restorePrevious(ctx, log, arn)
}

// restorePrevious finishes what a set-config started: AWSPREVIOUS goes
// back to the version PreviousKeyStage marks, if it is now on a version
// with the AWSCURRENT key (where writing the new version put it), and the
// mark is dropped. A mark left from before a rotation since (AWSPREVIOUS
// then holds another key) is only dropped.
func (o *Operator) restorePrevious(ctx context.Context, log *slog.Logger, arn string) error {
	sec, err := o.describe(ctx, arn)
	if err != nil {
		return err
	}
	marked := sec.VersionWith(PreviousKeyStage)
	if marked == "" {
		return nil
	}
	if prev := sec.VersionWith(rotation.StagePrevious); prev != "" && prev != marked {
		moved, err := o.sameKeyAsCurrent(ctx, sec, prev)
		if err != nil {
			return fmt.Errorf("set-config: cannot tell whether AWSPREVIOUS (version %s) was moved by a set-config: %w; "+
				"fix: move AWSPREVIOUS to version %s by hand if version %s holds the AWSCURRENT key, then remove %s from version %s", prev, err, marked, prev, PreviousKeyStage, marked)
		}
		if moved {
			if _, err := o.sm.UpdateSecretVersionStage(ctx, &secretsmanager.UpdateSecretVersionStageInput{
				SecretId: aws.String(arn), VersionStage: aws.String(rotation.StagePrevious), MoveToVersionId: aws.String(marked), RemoveFromVersionId: aws.String(prev),
			}); err != nil {
				return fmt.Errorf("set-config: move AWSPREVIOUS back to version %s, which holds the previous key: %w; fix: send set-config again", marked, err)
			}
			log.Info("AWSPREVIOUS kept on the previous key", "version_id", marked)
		}
	}
	if _, err := o.sm.UpdateSecretVersionStage(ctx, &secretsmanager.UpdateSecretVersionStageInput{
		SecretId: aws.String(arn), VersionStage: aws.String(PreviousKeyStage), RemoveFromVersionId: aws.String(marked),
	}); err != nil {
		return fmt.Errorf("set-config: remove %s from version %s: %w; fix: send set-config again", PreviousKeyStage, marked, err)
	}
	return nil
}

// sameKeyAsCurrent reports whether version holds AWSCURRENT's key (or, on
// a configuration-only secret, no key, as AWSCURRENT).
func (o *Operator) sameKeyAsCurrent(ctx context.Context, sec *keystate.Secret, version string) (bool, error) {
	cur, err := o.state.Load(ctx, sec.ARN, "", rotation.StageCurrent)
	if err != nil {
		return false, err
	}
	doc, err := o.state.Load(ctx, sec.ARN, version, "")
	if err != nil {
		return false, err
	}
	return fingerprintOf(doc.Key) == fingerprintOf(cur.Key), nil
}
