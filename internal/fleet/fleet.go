// Package fleet names the tenants of a flowkey fleet and spreads their
// rotations over the month. A fleet is one deployment that rotates the
// Flows key of many WABAs (tenants); the single-secret stack is a fleet of
// one, and none of this applies to it.
//
// # Tenants
//
// A tenant ID is 1 to 63 characters of lower-case letters, digits and
// hyphens, starting with a letter or a digit: it fits a secret name, an
// endpoint path (/t/<tenant>) and a tag value unchanged. The tenant's
// secret is named <secret prefix><tenant> (the prefix ends with "/", by
// default flowkey/tenants/), so that IAM can grant the fleet by one ARN
// pattern, and is tagged TagFleet = <fleet name> and TagTenant = <tenant>,
// so that IAM can require the tag on top of the name. TagEnrolled says
// whether the tenant rotates ("true") or was unenrolled ("false").
//
// # Spreading the load
//
// Each tenant rotates once a month, at a window start chosen by a hash of
// the fleet name and the tenant ID: a day of the month from 1 to 28 (every
// month has them) and an hour from 0 to 24-W, where W is the window in
// whole hours, because Secrets Manager refuses a window that runs into the
// next UTC day. The schedule is cron(0 H D * ? *) with Duration "<W>h".
// With the default 2-hour window there are 28 × 23 = 644 window starts a
// month; SHA-256 spreads tenants over them uniformly, so
//
//	tenants per window start  ≈ N / 644      (2,000 → 3.1; 10,000 → 15.5)
//	rotations an hour         ≈ N / 672      (over the 28 × 24 hours of days 1-28)
//	busiest window start      ≈ N/644 + 3·sqrt(N/644)   (10,000 → about 27)
//
// and Secrets Manager starts each rotation at a moment of its own within
// the window. What one rotation of a tenant with n numbers costs, and the
// quotas it is measured against (per account and Region, defaults; the
// sources are the AWS quota pages of each service):
//
//	KMS GenerateDataKeyPair RSA_2048    1 (with KMS_KEY_ID)    quota 1/s
//	KMS CreateKey + CreateAlias         1 + 1 (KMS custody)    quota 5/s each
//	Secrets Manager PutSecretValue and
//	  UpdateSecretVersionStage          1 + 3                  quota 50/s combined
//	Secrets Manager DescribeSecret      4 (measured)           quota 40,000/s
//	Secrets Manager GetSecretValue      8 (measured)           quota 10,000/s
//	Lambda invocations                  4 (one per step)       concurrency 1,000
//	Graph (Meta)                        2n                     about 200 an hour per WABA
//
// 10,000 tenants rotate about 15 an hour: 15 GenerateDataKeyPair calls an
// hour against 3,600 allowed, 60 writes an hour against 180,000, and at
// most a few rotations in flight. Meta's budget is per WABA, and each
// tenant is its own WABA, so the fleet's size does not touch it: each
// tenant spends 2n calls once a month (n reads an hour on the hourly
// status). What the schedule cannot pace is a burst started by hand
// (enrolling, or rotating every tenant at once): GenerateDataKeyPair then
// allows one new key a second, so a script that rotates a whole fleet
// should start at most one rotation a second; a throttled step retries
// with backoff and, past its time, fails so that Secrets Manager tries the
// whole rotation again, never losing it.
//
// A rotation is overdue when the tenant has not rotated for longer than
// the longest gap between two window starts (31 days, from a 31-day
// month's day D to the next month's) plus the window and an hour for the
// four steps: OverdueAfter.
package fleet

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Tags on every tenant secret.
const (
	TagFleet    = "flowkey:fleet"
	TagTenant   = "flowkey:tenant"
	TagEnrolled = "flowkey:enrolled"
)

// Defaults.
const (
	DefaultSecretPrefix = "flowkey/tenants/"
	DefaultTokenPrefix  = "flowkey/tokens/"
	DefaultWindow       = 2 * time.Hour
	// MaxWindow keeps at least 13 start hours a day to spread over.
	MaxWindow = 12 * time.Hour
	// Days is the number of days of the month a window may start on: 28,
	// which every month has.
	Days = 28
)

// TenantIDRule says what a tenant ID may be, for error messages.
const TenantIDRule = "1 to 63 lower-case letters, digits and hyphens, starting with a letter or a digit"

var tenantIDRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

// ValidTenantID reports whether id follows TenantIDRule.
func ValidTenantID(id string) bool { return tenantIDRE.MatchString(id) }

// SecretName is the name of tenant's secret under prefix.
func SecretName(prefix, tenant string) string { return prefix + tenant }

// TenantOf returns the tenant whose secret is name (a name, not an ARN)
// under prefix, and whether name is one.
func TenantOf(prefix, name string) (string, bool) {
	t, ok := strings.CutPrefix(name, prefix)
	return t, ok && ValidTenantID(t)
}

// Schedule is a tenant's monthly window start, in UTC.
type Schedule struct {
	Day  int // 1-28
	Hour int // 0 to 24-window
	// Window is the window's length in whole hours.
	Window int
}

// ScheduleFor derives tenant's schedule from a hash of the fleet and the
// tenant, so that it never changes and needs no state. window must be a
// whole number of hours from 1 to MaxWindow.
func ScheduleFor(fleetName, tenant string, window time.Duration) Schedule {
	w := int(window / time.Hour)
	hours := 25 - w // start hours 0..24-w keep the window inside the UTC day
	sum := sha256.Sum256([]byte(fleetName + "\x00" + tenant))
	slot := int(binary.BigEndian.Uint64(sum[:8]) % uint64(Days*hours))
	return Schedule{Day: slot/hours + 1, Hour: slot % hours, Window: w}
}

// Expression is the schedule as Secrets Manager takes it.
func (s Schedule) Expression() string { return fmt.Sprintf("cron(0 %d %d * ? *)", s.Hour, s.Day) }

// Duration is the window as Secrets Manager takes it.
func (s Schedule) Duration() string { return fmt.Sprintf("%dh", s.Window) }

// Next is the first window start after now.
func (s Schedule) Next(now time.Time) time.Time {
	now = now.UTC()
	t := time.Date(now.Year(), now.Month(), s.Day, s.Hour, 0, 0, 0, time.UTC)
	if !t.After(now) {
		t = t.AddDate(0, 1, 0)
	}
	return t
}

// OverdueAfter is the age of the last rotation past which a tenant with
// this window is overdue: 31 days, the window and an hour.
func OverdueAfter(window time.Duration) time.Duration {
	return 31*24*time.Hour + window + time.Hour
}

// ValidWindow reports whether window is a whole number of hours from 1h
// to MaxWindow.
func ValidWindow(window time.Duration) bool {
	return window >= time.Hour && window <= MaxWindow && window%time.Hour == 0
}

// EnrollToken is the ClientRequestToken of tenant's first version: the
// same fleet, tenant and configuration always give the same token, so a
// retried enroll writes nothing new. canonicalConfig is the configuration
// as encoding/json marshals secretdoc.Config.
func EnrollToken(fleetName, tenant, canonicalConfig string) string {
	ns := uuid.NewSHA1(uuid.NameSpaceURL, []byte("https://github.com/flowkey/flowkey/enroll"))
	return uuid.NewSHA1(ns, []byte(fleetName+"\n"+tenant+"\n"+canonicalConfig)).String()
}

// UnqualifiedFunctionARN drops a version or alias from a Lambda function
// ARN (arn:aws:lambda:<region>:<account>:function:<name>[:<qualifier>]),
// and reports whether arn is a function ARN at all.
func UnqualifiedFunctionARN(arn string) (string, bool) {
	parts := strings.Split(arn, ":")
	if len(parts) < 7 || len(parts) > 8 || parts[0] != "arn" || parts[2] != "lambda" || parts[5] != "function" || parts[6] == "" {
		return "", false
	}
	return strings.Join(parts[:7], ":"), true
}

// InPrefix reports whether id, a secret name or ARN, names a secret under
// prefix: the name itself, or the ARN's resource part.
func InPrefix(id, prefix string) bool {
	if prefix == "" {
		return false
	}
	name := id
	if strings.HasPrefix(id, "arn:") {
		// arn:<partition>:secretsmanager:<region>:<account>:secret:<name>-<6>
		parts := strings.SplitN(id, ":", 7)
		if len(parts) != 7 || parts[2] != "secretsmanager" || parts[5] != "secret" {
			return false
		}
		name = parts[6]
	}
	return strings.HasPrefix(name, prefix) && len(name) > len(prefix)
}
