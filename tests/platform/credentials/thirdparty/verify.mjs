// Verifies academy's credentials with Digital Bazaar's VC 2.0 stack, the reference JavaScript
// verifier: @digitalbazaar/vc, data-integrity, the eddsa-jcs-2022 and eddsa-rdfc-2022
// cryptosuites, vc-bitstring-status-list, and jsonld.js in safe mode.
//
// Reads one JSON request on stdin:
//   {"contexts": {url: file}, "documents": {url: document}, "credentials": [...],
//    "expand": [...]}
// and writes one JSON answer on stdout: a verdict per credential (valid, revoked, suspended,
// invalid, with the library's reason) and, per document in "expand", whether safe-mode
// expansion accepts it. Nothing is fetched: the document loader serves the given contexts and
// documents, and did:key documents derived from the key itself; any other URL fails by name.
import {readFileSync} from 'node:fs';

import * as vc from '@digitalbazaar/vc';
import {DataIntegrityProof} from '@digitalbazaar/data-integrity';
import {cryptosuite as rdfcSuite} from '@digitalbazaar/eddsa-rdfc-2022-cryptosuite';
import {createVerifyCryptosuite} from '@digitalbazaar/eddsa-jcs-2022-cryptosuite';
import {checkStatus} from '@digitalbazaar/vc-bitstring-status-list';
import jsonld from 'jsonld';

const request = JSON.parse(readFileSync(0, 'utf8'));
const contexts = Object.fromEntries(
  Object.entries(request.contexts).map(([url, file]) => [url, JSON.parse(readFileSync(file, 'utf8'))]));
const documents = request.documents || {};

function didKeyDocument(did) {
  const key = did.slice('did:key:'.length);
  const method = {
    '@context': 'https://w3id.org/security/multikey/v1',
    id: `${did}#${key}`,
    type: 'Multikey',
    controller: did,
    publicKeyMultibase: key,
  };
  return {
    method,
    document: {
      '@context': ['https://www.w3.org/ns/did/v1', 'https://w3id.org/security/multikey/v1'],
      id: did,
      verificationMethod: [method],
      assertionMethod: [method.id],
      authentication: [method.id],
    },
  };
}

function findMethod(document, url) {
  for(const vm of document.verificationMethod || []) {
    if(typeof vm === 'object' && vm.id === url) {
      return {'@context': document['@context'], ...vm};
    }
  }
  return null;
}

async function documentLoader(url) {
  const answer = document => ({contextUrl: null, documentUrl: url, document});
  if(contexts[url]) {
    return answer(structuredClone(contexts[url]));
  }
  const [base] = url.split('#');
  if(url.startsWith('did:key:')) {
    const {method, document} = didKeyDocument(base);
    return answer(url.includes('#') ? method : document);
  }
  if(documents[url]) {
    return answer(structuredClone(documents[url]));
  }
  if(url.includes('#') && documents[base]) {
    const method = findMethod(documents[base], url);
    if(method) {
      return answer(method);
    }
  }
  throw new Error(`not served by this loader (nothing is fetched): ${url}`);
}

const suite = [
  new DataIntegrityProof({cryptosuite: createVerifyCryptosuite()}),
  new DataIntegrityProof({cryptosuite: rdfcSuite}),
];

function reason(result) {
  const errors = [];
  const walk = e => {
    if(!e) {
      return;
    }
    if(Array.isArray(e)) {
      e.forEach(walk);
      return;
    }
    errors.push(e.message || String(e));
    walk(e.errors);
    walk(e.cause);
  };
  walk(result.error);
  for(const r of result.results || []) {
    walk(r.error);
  }
  return errors.join('; ');
}

async function verifyOne(credential) {
  let result;
  try {
    result = await vc.verifyCredential({credential, suite, documentLoader, checkStatus});
  } catch(e) {
    return {verdict: 'invalid', reason: e.message, proofs: []};
  }
  const proofs = (result.results || []).map(r => ({
    cryptosuite: r.proof && r.proof.cryptosuite, verified: r.verified}));
  if(!result.verified) {
    return {verdict: 'invalid', reason: reason(result), proofs};
  }
  const statuses = (result.statusResult && result.statusResult.results) || [];
  const set = statuses.filter(s => s.status).map(s => s.credentialStatus.statusPurpose);
  const verdict = set.includes('revocation') ? 'revoked' :
    set.includes('suspension') ? 'suspended' : 'valid';
  return {
    verdict,
    proofs,
    statuses: statuses.map(s => ({purpose: s.credentialStatus.statusPurpose, set: s.status})),
  };
}

async function expandOne(document) {
  try {
    await jsonld.expand(structuredClone(document), {documentLoader, safe: true});
    return {ok: true};
  } catch(e) {
    const details = e.details && e.details.event ? `: ${e.details.event.code}` : '';
    return {ok: false, reason: e.message + details};
  }
}

const out = {credentials: [], expand: []};
for(const credential of request.credentials || []) {
  out.credentials.push({id: credential.id, ...await verifyOne(credential)});
}
for(const document of request.expand || []) {
  out.expand.push({id: document.id, ...await expandOne(document)});
}
process.stdout.write(JSON.stringify(out));
