package tests

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Both tools come from the machine image, not from the project: without
// them these tests skip (`make lint`, `make test` and `make validate` run
// the same checks and say so when they skip).

// cfnLintTranslatedIgnore: a condition used only by Globals (TracingEnabled)
// is unused in the translated template while no function uses it.
const cfnLintTranslatedIgnore = "W8001"

func TestTemplateCfnLint(t *testing.T) {
	t.Parallel()
	cfnLint := lookTool(t, "cfn-lint")
	out, err := exec.Command(cfnLint, "--", templatePath(t)).CombinedOutput()
	assert.NoError(t, err, "cfn-lint template.yaml reported problems:\n%s", out)
}

func TestTemplateSAMTranslate(t *testing.T) {
	t.Parallel()
	python := lookTool(t, "python3")
	if out, err := exec.Command(python, "-c", "import samtranslator, cfnlint").CombinedOutput(); err != nil {
		lines := bytes.Split(bytes.TrimSpace(out), []byte("\n"))
		t.Skipf("python3 cannot import samtranslator and cfnlint (%s): SAM translation not checked", lines[len(lines)-1])
	}
	script, err := filepath.Abs(filepath.Join("..", "scripts", "sam-translate.py"))
	require.NoError(t, err)
	cmd := exec.Command(python, script, templatePath(t))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	translated, err := cmd.Output()
	require.NoError(t, err, "sam-translate.py failed:\n%s", stderr.String())

	var tpl map[string]any
	require.NoError(t, json.Unmarshal(translated, &tpl))
	assert.NotContains(t, tpl, "Transform")
	assert.NotContains(t, tpl, "Globals")
	types := map[string]string{}
	for id, r := range obj(t, tpl["Resources"]) {
		types[id] = str(t, obj(t, r)["Type"])
	}
	for id, typ := range map[string]string{
		tableLogicalID:      "AWS::DynamoDB::Table",
		"AcquireOnlyPolicy": "AWS::IAM::ManagedPolicy",
		"FullAccessPolicy":  "AWS::IAM::ManagedPolicy",
		"ReadOnlyPolicy":    "AWS::IAM::ManagedPolicy",
	} {
		assert.Equal(t, typ, types[id], "translated resource %s", id)
	}

	// cfn-lint skips some checks on a SAM template (e.g. W3037, unknown IAM
	// actions) that it runs on the translated one.
	cfnLint, err := exec.LookPath("cfn-lint")
	if err != nil {
		t.Log("cfn-lint not on PATH: translated template not linted")
		return
	}
	lint := exec.Command(cfnLint, "--ignore-checks", cfnLintTranslatedIgnore)
	lint.Stdin = bytes.NewReader(translated)
	out, err := lint.CombinedOutput()
	assert.NoError(t, err, "cfn-lint on the translated template reported problems:\n%s", out)
}

func lookTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s not on PATH: check skipped", name)
	}
	return p
}
