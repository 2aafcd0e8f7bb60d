package main

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsec2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
	"github.com/cdklabs/cdk-nag-go/cdknag/v2"
)

// vpcEndpoint is an interface endpoint: its construct ID and service.
type vpcEndpoint struct{ id, service string }

// endpointServices are the interface endpoints the functions need when
// their subnets should reach AWS without the NAT: the seed, the rotator and
// the Flows endpoint call Secrets Manager, the rotator KMS, the endpoint KMS
// too for the versions in KMS custody (kms:Decrypt), and Lambda's
// X-Ray daemon sends the traces (Tracing is Active) over the function's
// network. A Flows endpoint whose backend is a Lambda function also calls
// the Lambda API, with the users' decrypted Flows data: lambdaBackend adds
// its endpoint. Graph has no endpoint: the rotator reaches
// graph.facebook.com through the VPC's NAT, as an HTTPS backend outside
// the VPC is reached.
func endpointServices(lambdaBackend bool) []vpcEndpoint {
	services := []vpcEndpoint{
		{"SecretsManagerEndpoint", "secretsmanager"},
		{"KmsEndpoint", "kms"},
		{"XRayEndpoint", "xray"},
	}
	if lambdaBackend {
		services = append(services, vpcEndpoint{"LambdaEndpoint", "lambda"})
	}
	return services
}

// networkInterfacesRegex matches, in cdk-nag's rendering, the
// network-interface/* resource of this account and region, with a concrete
// or an environment-agnostic stack (<AWS::Region> and the like).
const networkInterfacesRegex = `/^Resource::arn:(aws[a-z-]*|<AWS::Partition>):ec2:([a-z0-9-]+|<AWS::Region>):([0-9]{12}|<AWS::AccountId>):network-interface\/\*$/g`

// network is the VPC placement and the endpoints the stack created.
type network struct {
	Network
	endpoints []constructs.IDependable
}

// newNetwork creates, if asked, the interface endpoints and their security
// group, which admits HTTPS from the functions' security groups only.
func newNetwork(stack awscdk.Stack, props *RotationStackProps) network {
	n := props.Network
	out := network{Network: n}
	if !n.enabled() || !n.CreateEndpoints {
		return out
	}
	var ingress []any
	for _, sg := range n.SecurityGroupIDs {
		ingress = append(ingress, &awsec2.CfnSecurityGroup_IngressProperty{
			IpProtocol: jsii.String("tcp"), FromPort: jsii.Number(443), ToPort: jsii.Number(443),
			SourceSecurityGroupId: jsii.String(sg), Description: jsii.String("HTTPS from the flowkey functions"),
		})
	}
	sg := awsec2.NewCfnSecurityGroup(stack, jsii.String("VpcEndpointSecurityGroup"), &awsec2.CfnSecurityGroupProps{
		GroupDescription:     jsii.String("flowkey: the interface endpoints of " + *stack.StackName() + ", reachable from its functions only"),
		VpcId:                jsii.String(n.VPCID),
		SecurityGroupIngress: ingress,
		// Endpoints answer; they never open connections. The rule is
		// CDK's way to replace the default allow-all egress with nothing.
		SecurityGroupEgress: []any{&awsec2.CfnSecurityGroup_EgressProperty{
			IpProtocol: jsii.String("icmp"), FromPort: jsii.Number(252), ToPort: jsii.Number(86),
			CidrIp: jsii.String("255.255.255.255/32"), Description: jsii.String("Disallow all traffic"),
		}},
	})
	subnets := make([]any, 0, len(n.SubnetIDs))
	for _, id := range n.SubnetIDs {
		subnets = append(subnets, id)
	}
	for _, e := range endpointServices(props.endpointOn() && props.Endpoint.BackendFunctionARN != "") {
		out.endpoints = append(out.endpoints, awsec2.NewCfnVPCEndpoint(stack, jsii.String(e.id), &awsec2.CfnVPCEndpointProps{
			VpcId:             jsii.String(n.VPCID),
			ServiceName:       jsii.String("com.amazonaws." + *stack.Region() + "." + e.service),
			VpcEndpointType:   jsii.String("Interface"),
			SubnetIds:         &subnets,
			SecurityGroupIds:  &[]any{sg.AttrGroupId()},
			PrivateDnsEnabled: jsii.Bool(true),
		}))
	}
	return out
}

// requiredBy makes c wait for the endpoints: whatever calls AWS at deploy
// time (the seed, the rotation schedule's testSecret) needs them.
func (n network) requiredBy(c constructs.IConstruct) {
	for _, e := range n.endpoints {
		c.Node().AddDependency(e)
	}
}

// place puts a function in the subnets and security groups, with a policy
// of its own on role for the network interfaces Lambda creates with it.
// The function depends on that policy: Lambda checks the permissions when
// it creates the function. The escape hatch instead of the L2 vpc props:
// those need the VPC's availability zones, add a managed policy to roles
// they create and a security group the settings did not name.
func (n network) place(stack awscdk.Stack, id string, role awsiam.IRole, fn awslambda.CfnFunction) {
	ec2 := func(resource, name string) *string {
		return stack.FormatArn(&awscdk.ArnComponents{Service: jsii.String("ec2"), Resource: jsii.String(resource), ResourceName: jsii.String(name)})
	}
	create := []*string{ec2("network-interface", "*")}
	for _, s := range n.SubnetIDs {
		create = append(create, ec2("subnet", s))
	}
	for _, s := range n.SecurityGroupIDs {
		create = append(create, ec2("security-group", s))
	}
	policy := awsiam.NewPolicy(stack, jsii.String(id+"NetworkPolicy"), &awsiam.PolicyProps{
		Roles: &[]awsiam.IRole{role},
		Statements: &[]awsiam.PolicyStatement{
			awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
				Sid:       jsii.String("CreateNetworkInterfacesInTheseSubnets"),
				Actions:   jsii.Strings("ec2:CreateNetworkInterface"),
				Resources: &create,
			}),
			awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
				Sid:       jsii.String("ManageNetworkInterfaces"),
				Actions:   jsii.Strings("ec2:DeleteNetworkInterface", "ec2:AssignPrivateIpAddresses", "ec2:UnassignPrivateIpAddresses"),
				Resources: &[]*string{ec2("network-interface", "*")},
			}),
			awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
				Sid:       jsii.String("DescribeNetwork"),
				Actions:   jsii.Strings("ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets"),
				Resources: jsii.Strings("*"),
			}),
		},
	})
	cdknag.NagSuppressions_AddResourceSuppressions(policy, &[]*cdknag.NagPackSuppression{{
		Id: jsii.String("AwsSolutions-IAM5"),
		Reason: jsii.String("Lambda's VPC network interfaces: their IDs exist only once Lambda creates them, so network-interface/* " +
			"(this account and region) is the narrowest resource, and ec2:DescribeNetworkInterfaces and ec2:DescribeSubnets " +
			"support no resource-level permissions (Service Authorization Reference), so Resource must be *. Creation is limited " +
			"to the configured subnets and security groups."),
		AppliesTo: &[]any{"Resource::*", &cdknag.RegexAppliesTo{Regex: jsii.String(networkInterfacesRegex)}},
	}}, jsii.Bool(true))
	fn.AddPropertyOverride(jsii.String("VpcConfig"), map[string]any{
		"SubnetIds":        n.SubnetIDs,
		"SecurityGroupIds": n.SecurityGroupIDs,
	})
	fn.Node().AddDependency(policy)
}
