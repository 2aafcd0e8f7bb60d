// Command infra is the CDK app that deploys flowkey: `cdk deploy` from this
// directory (see cdk.json). Settings come from CDK context or FLOWKEY_*
// environment variables; see RotationStackProps and README.md.
package main

import (
	"fmt"
	"os"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/jsii-runtime-go"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "flowkey infra:", err)
		os.Exit(1)
	}
}

func run() error {
	defer jsii.Close()
	app := awscdk.NewApp(nil)
	s := settings{
		context: func(key string) any { return app.Node().TryGetContext(jsii.String(key)) },
		getenv:  os.Getenv,
	}
	name, err := stackNameFromSettings(s)
	if err != nil {
		return err
	}
	props, err := propsFromSettings(s)
	if err != nil {
		return err
	}
	props.StackProps = awscdk.StackProps{Env: envFromCLI()}
	NewRotationStack(app, name, props)
	addNagChecks(app)
	app.Synth(nil)
	return nil
}

// envFromCLI pins the stack to the account and region the CDK CLI resolved
// from the caller's credentials, when it could; otherwise the template stays
// environment-agnostic.
func envFromCLI() *awscdk.Environment {
	account, region := os.Getenv("CDK_DEFAULT_ACCOUNT"), os.Getenv("CDK_DEFAULT_REGION")
	if account == "" || region == "" {
		return nil
	}
	return &awscdk.Environment{Account: jsii.String(account), Region: jsii.String(region)}
}
