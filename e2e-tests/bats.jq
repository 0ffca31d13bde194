# Writes e2e.bats: one @test per case folder, named by the folder and its
# expect.json description, so a new case needs no bats edit and no description
# is written twice. `make e2e-tests/e2e.bats` runs it over every expect.json:
#   jq -rn -f e2e-tests/bats.jq e2e-tests/cases/*/expect.json

# bats evaluates a test's name inside double quotes.
def bash_quoted: "\"" + gsub("(?<c>[\\\\\"$`])"; "\\\(.c)") + "\"";

"#!/usr/bin/env bats",
"#",
"# Generated from e2e-tests/cases/*/expect.json by e2e-tests/bats.jq: edit the",
"# cases, not this file. The checks are in helpers.bash.",
"",
"load helpers",
( inputs
  | (input_filename | split("/") | .[-2]) as $case
  | if ($case | test("^[a-z0-9-]+$") | not) then error("\(input_filename): a case folder name is lowercase letters, digits and dashes")
    elif (.description | type) != "string" or .description == "" or (.description | test("\n"))
    then error("\(input_filename): description must be one line of text")
    else . end
  | "",
    "@test \("\($case): \(.description)" | bash_quoted) {",
    "  run_case \($case)",
    "}"
)
