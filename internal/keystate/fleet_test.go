package keystate

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
)

// A fleet reads a tenant's name, rotation configuration and deletion date
// from the one DescribeSecret.
func TestDescribeReportsTheRotationConfigurationAndDeletion(t *testing.T) {
	f := newFixture(t, Options{})
	f.sm.Put(f.s, "v0", doc(t, nil, pairs[0]), StageCurrent)
	f.s.RotationLambdaARN = "arn:aws:lambda:us-east-1:111122223333:function:flowkey-rotator"
	f.s.RotationRules = &types.RotationRulesType{ScheduleExpression: aws.String("cron(0 9 15 * ? *)"), Duration: aws.String("2h")}
	deleted := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	f.s.DeletedDate = &deleted
	sec, err := f.r.Describe(context.Background(), "flowkey/key")
	if err != nil {
		t.Fatal(err)
	}
	if sec.Name != "flowkey/key" || sec.RotationLambdaARN != f.s.RotationLambdaARN || sec.Schedule != "cron(0 9 15 * ? *)" || sec.Window != "2h" || !sec.Deleted.Equal(deleted) {
		t.Errorf("got %+v", sec)
	}
	f.s.RotationRules, f.s.DeletedDate, f.s.RotationLambdaARN = nil, nil, ""
	if sec, err = f.r.Describe(context.Background(), "flowkey/key"); err != nil || sec.Schedule != "" || sec.Window != "" || !sec.Deleted.IsZero() || sec.RotationLambdaARN != "" {
		t.Errorf("without a configuration: %+v, %v", sec, err)
	}
}
