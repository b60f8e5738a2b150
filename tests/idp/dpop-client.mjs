// A DPoP client built on an independent implementation (panva's `dpop` package), for the
// interoperability tests of scopegate's DPoP support.
//
//   node dpop-client.mjs TOKEN_ENDPOINT RESOURCE SCOPE HTU...
//
// Generates an ES256 key, gets a DPoP-bound access token from TOKEN_ENDPOINT with the
// client-credentials grant of `m2m-client` (a proof for the token request), then makes
// one `GET` proof for each HTU with the token's `ath`, and prints one JSON line:
// {"token_type": …, "access_token": …, "jkt": …, "proofs": [one per HTU, in order]}.
import { calculateThumbprint, generateKeyPair, generateProof } from 'dpop';

const [tokenEndpoint, resource, scope, ...htus] = process.argv.slice(2);
if (!tokenEndpoint || !resource || !scope) {
  console.error('usage: node dpop-client.mjs TOKEN_ENDPOINT RESOURCE SCOPE HTU...');
  process.exit(2);
}

const keypair = await generateKeyPair('ES256');
const response = await fetch(tokenEndpoint, {
  method: 'POST',
  headers: {
    authorization: `Basic ${Buffer.from('m2m-client:m2m-secret').toString('base64')}`,
    'content-type': 'application/x-www-form-urlencoded',
    dpop: await generateProof(keypair, tokenEndpoint, 'POST'),
  },
  body: new URLSearchParams({ grant_type: 'client_credentials', resource, scope }),
});
const body = await response.json();
if (!response.ok) {
  console.error(`token request refused: ${response.status} ${JSON.stringify(body)}`);
  process.exit(1);
}
const proofs = [];
for (const htu of htus) {
  proofs.push(await generateProof(keypair, htu, 'GET', undefined, body.access_token));
}
console.log(JSON.stringify({
  token_type: body.token_type,
  access_token: body.access_token,
  jkt: await calculateThumbprint(keypair.publicKey),
  proofs,
}));
