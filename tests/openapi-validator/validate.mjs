// Validates an OpenAPI document (a JSON file, the first argument) against the official
// OpenAPI 3.1 schema with @seriousme/openapi-schema-validator. Prints one line; exits 0
// when the document is a valid OpenAPI 3.1 document, 1 when it is not (with the errors).
import { readFile } from "node:fs/promises";
import { Validator } from "@seriousme/openapi-schema-validator";

const path = process.argv[2];
const document = JSON.parse(await readFile(path, "utf8"));
const validator = new Validator();
const result = await validator.validate(document);
if (!result.valid) {
  console.log(`INVALID OpenAPI ${validator.version}: ${JSON.stringify(result.errors)}`);
  process.exit(1);
}
if (validator.version !== "3.1") {
  console.log(`INVALID: a valid OpenAPI ${validator.version} document, not 3.1`);
  process.exit(1);
}
console.log(`VALID OpenAPI ${validator.version}`);
