package secretsemu

import (
	"fmt"
	"net/http"
)

// apiError is an AWS JSON 1.1 error: HTTP status, __type and message.
type apiError struct {
	Type    string
	Message string
	Status  int
}

func (e *apiError) Error() string { return e.Type + ": " + e.Message }

func newAPIError(typ, msg string) *apiError {
	return &apiError{Type: typ, Message: msg, Status: http.StatusBadRequest}
}

func errInvalidParameter(msg string) *apiError { return newAPIError("InvalidParameterException", msg) }
func errInvalidRequest(msg string) *apiError   { return newAPIError("InvalidRequestException", msg) }
func errResourceExists(msg string) *apiError   { return newAPIError("ResourceExistsException", msg) }
func errNotFound(msg string) *apiError         { return newAPIError("ResourceNotFoundException", msg) }

func errInternal(msg string) *apiError {
	return &apiError{Type: "InternalServiceError", Message: msg, Status: http.StatusInternalServerError}
}

// Messages Secrets Manager itself uses (quoted in public SDK issues and docs).
const (
	msgSecretNotFound     = "Secrets Manager can't find the specified secret."
	msgMarkedForDeletion  = "You can't perform this operation on the secret because it was marked for deletion."
	msgNameScheduled      = "You can't create this secret because a secret with this name is already scheduled for deletion."
	msgRotationIncomplete = "A previous rotation isn't complete. That rotation will be reattempted."
	msgNoRotationLambda   = "You tried to enable rotation on a secret that doesn't already have a Lambda function ARN configured and you didn't include such an ARN as a parameter in this call."
	msgTokenRequired      = "You must provide a ClientRequestToken value. We recommend a UUID-type value."
)

func errValueNotFoundForStage(stage string) *apiError {
	return errNotFound("Secrets Manager can't find the specified secret value for staging label: " + stage)
}

func errValueNotFoundForVersion(id string) *apiError {
	return errNotFound("Secrets Manager can't find the specified secret value for VersionId: " + id)
}

func errSecretExists(name string) *apiError {
	return errResourceExists(fmt.Sprintf("The operation failed because the secret %s already exists.", name))
}
