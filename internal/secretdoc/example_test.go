package secretdoc_test

import (
	"errors"
	"fmt"

	"github.com/flowkey/flowkey/internal/secretdoc"
)

// A first version holds configuration only; the first rotation adds "key".
func ExampleParse() {
	doc, err := secretdoc.Parse([]byte(`{
	  "schema_version": 1,
	  "config": {
	    "phone_number_ids": ["106540352242922", "106540352242923"],
	    "access_token_secret_id": "flowkey/graph-token",
	    "graph_api_version": "v24.0"
	  }
	}`))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(doc)
	// Output: secretdoc.Document{schema_version:1 config:{phone_number_ids:2} key:none}
}

// Every problem names its JSON path, says what is wrong and how to fix it.
func ExampleParse_errors() {
	_, err := secretdoc.Parse([]byte(`{"schema_version":1,"config":{"phone_number_ids":["106540352242922","10654035224292x"],"graph_api_version":"24"}}`))
	var de *secretdoc.Error
	fmt.Println(errors.As(err, &de), de.Field)
	fmt.Println(err)
	// Output:
	// true config.phone_number_ids[1]
	// config.phone_number_ids[1]: "10654035224292x..." is not decimal digits only (character 15 is not a digit); fix: use the numeric ID as WhatsApp Manager shows it, e.g. 106540352242922
	// config.graph_api_version: is not a Graph API version of the form v<major>.<minor> (2 characters); fix: use a live version like "v24.0", or remove it to use the function's default
}
