// Drives Warden's MCP server with the official TypeScript MCP client
// (@modelcontextprotocol/sdk, unmodified) and checks the tools' contract.
//
//   node client.mjs --stdio -- <command> [args...]   # e.g. -- warden mcp
//   node client.mjs --http <url> --key <key>         # e.g. http://127.0.0.1:8000/mcp
//
// Prints "ok <n> <scenario>" per passed scenario, then one JSON line
// {"default_sandbox_id": "..."} and closes the session. Exits 1 if any
// scenario failed (each failure is printed to stderr with the reason), 2 on
// bad usage.
import assert from 'node:assert/strict';
import process from 'node:process';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

const TOOLS = ['run_python', 'run_shell', 'write_file', 'read_file', 'list_files',
  'create_sandbox', 'list_sandboxes', 'destroy_sandbox'];
// The first call creates the default sandbox, and a Docker one can take a
// while on a loaded machine: well above the SDK's 60 s default.
const CALL_TIMEOUT_MS = 150_000;

function usage(msg) {
  process.stderr.write(`client.mjs: ${msg}\nusage: node client.mjs --stdio -- <command> [args...]\n       node client.mjs --http <url> --key <key>\n`);
  process.exit(2);
}

function parseArgs(argv) {
  if (argv[0] === '--stdio') {
    if (argv[1] !== '--' || argv.length < 3) usage('--stdio needs -- <command> [args...]');
    return { mode: 'stdio', command: argv[2], args: argv.slice(3) };
  }
  if (argv[0] === '--http') {
    const o = { mode: 'http', url: argv[1] };
    for (let i = 2; i < argv.length; i += 2) {
      if (argv[i] === '--key' && argv[i + 1] !== undefined) o.key = argv[i + 1];
      else usage(`unexpected argument ${argv[i]}`);
    }
    if (!o.url) usage('--http needs a URL');
    return o;
  }
  usage('choose --stdio or --http');
}

function makeTransport(o) {
  if (o.mode === 'stdio') {
    const env = {};
    for (const [k, v] of Object.entries(process.env)) if (v !== undefined) env[k] = v;
    // The server's log goes to our stderr.
    return new StdioClientTransport({ command: o.command, args: o.args, env, stderr: 'inherit' });
  }
  const headers = o.key ? { Authorization: `Bearer ${o.key}` } : {};
  return new StreamableHTTPClientTransport(new URL(o.url), { requestInit: { headers } });
}

// text joins a tool result's text items.
const text = (r) => (r.content ?? []).filter((c) => c.type === 'text').map((c) => c.text).join('\n');
const show = (r) => JSON.stringify(r).slice(0, 2000);

const opts = parseArgs(process.argv.slice(2));
const client = new Client({ name: 'warden-mcp-compat', version: '1.0.0' });
const transport = makeTransport(opts);

// call runs a tool and returns its result. A protocol error (a thrown
// McpError) fails the scenario: the contract wants every problem, bad
// arguments included, as a tool result with isError.
async function call(name, args) {
  try {
    return await client.callTool({ name, arguments: args }, undefined, { timeout: CALL_TIMEOUT_MS });
  } catch (e) {
    throw new Error(`${name} ${JSON.stringify(args)} failed as a protocol error, not a tool result: ${e?.message ?? e}`);
  }
}

// ok asserts that a tool call succeeded and returns its structuredContent.
function ok(r, what) {
  assert.ok(!r.isError, `${what}: isError is set: ${show(r)}`);
  assert.equal(typeof r.structuredContent, 'object', `${what}: no structuredContent: ${show(r)}`);
  return r.structuredContent;
}

async function py(code, extra = {}) {
  const r = await call('run_python', { code, ...extra });
  return { r, sc: ok(r, `run_python ${JSON.stringify(code)}`) };
}

let defaultID = null;
let extraID = null;
let extraDestroyed = false;

const scenarios = [
  ['listTools: eight tools with descriptions and object schemas', async () => {
    const { tools } = await client.listTools();
    const byName = new Map(tools.map((t) => [t.name, t]));
    for (const n of TOOLS) {
      const t = byName.get(n);
      assert.ok(t, `tool ${n} missing; the server lists ${[...byName.keys()].join(', ')}`);
      assert.ok(typeof t.description === 'string' && t.description.length > 0, `tool ${n} has no description`);
      assert.equal(t.inputSchema?.type, 'object', `tool ${n}: inputSchema.type`);
    }
    assert.ok(byName.get('run_python').inputSchema.required?.includes('code'),
      `run_python's inputSchema does not require code: ${JSON.stringify(byName.get('run_python').inputSchema)}`);
  }],

  ['state kept between run_python calls', async () => {
    const first = await py('x = 41');
    const { r, sc } = await py('x + 1');
    assert.ok(text(r).includes('42'), `text of x + 1 lacks 42: ${show(r)}`);
    assert.equal(sc.return_value, '42', 'return_value of x + 1');
    assert.ok(typeof sc.sandbox_id === 'string' && sc.sandbox_id !== '', `no sandbox_id: ${show(r)}`);
    assert.equal(first.sc.sandbox_id, sc.sandbox_id, 'both calls ran in the default sandbox');
    defaultID = sc.sandbox_id;
  }],

  ['stdout of print', async () => {
    const { r, sc } = await py('print("hello from warden")');
    assert.ok(text(r).includes('hello from warden'), `text lacks the output: ${show(r)}`);
    assert.equal(sc.stdout, 'hello from warden\n', 'structuredContent.stdout');
    assert.equal(sc.exit_code, 0, 'exit_code');
  }],

  ['run_shell: exit code, stdout and stderr', async () => {
    const r = await call('run_shell', { command: 'echo hi; echo oops >&2; exit 3' });
    assert.equal(r.isError, true, `isError for exit 3: ${show(r)}`);
    const sc = r.structuredContent;
    assert.equal(typeof sc, 'object', `no structuredContent: ${show(r)}`);
    assert.equal(sc.exit_code, 3, 'exit_code');
    assert.equal(sc.stdout, 'hi\n', 'stdout');
    assert.ok(sc.stderr.includes('oops'), `stderr lacks oops: ${JSON.stringify(sc.stderr)}`);
  }],

  ['files: write, read, list, and the same workspace as run_python', async () => {
    let r = await call('write_file', { path: 'notes/a.txt', content: 'hello file' });
    let sc = ok(r, 'write_file notes/a.txt');
    assert.equal(sc.size, 10, 'size written');
    r = await call('read_file', { path: 'notes/a.txt' });
    assert.ok(!r.isError, `read_file: ${show(r)}`);
    assert.equal(r.content?.[0]?.type, 'text', `read_file's first item: ${show(r)}`);
    assert.equal(r.content[0].text, 'hello file', 'read_file text');
    r = await call('list_files', { path: 'notes' });
    sc = ok(r, 'list_files notes');
    const e = (sc.entries ?? []).find((x) => x.name === 'a.txt');
    assert.ok(e, `list_files notes lacks a.txt: ${show(r)}`);
    assert.equal(e.type, 'file', 'type of a.txt');
    ({ sc } = await py("open('notes/a.txt').read()"));
    assert.equal(sc.return_value, "'hello file'", 'run_python reading the file');
    r = await call('write_file', { path: 'bin.dat', content_base64: Buffer.from([0, 1, 2, 255]).toString('base64') });
    sc = ok(r, 'write_file bin.dat');
    assert.equal(sc.size, 4, 'size of bin.dat');
    ({ sc } = await py("list(open('bin.dat', 'rb').read())"));
    assert.equal(sc.return_value, '[0, 1, 2, 255]', 'bytes of bin.dat');
  }],

  ['matplotlib figure as an image/png item', async () => {
    const { r } = await py('import matplotlib.pyplot as plt\nplt.plot([1,2,3],[1,4,9])\nplt.show()');
    const img = (r.content ?? []).find((c) => c.type === 'image');
    assert.ok(img, `no image item: ${show(r)}`);
    assert.equal(img.mimeType, 'image/png', 'mimeType');
    const png = Buffer.from(img.data, 'base64');
    assert.ok(png.subarray(0, 4).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47])),
      `data does not start with \\x89PNG: ${png.subarray(0, 8).toString('hex')}`);
  }],

  ['exception: isError, the error, and the session survives', async () => {
    const r = await call('run_python', { code: '1/0' });
    assert.equal(r.isError, true, `isError for 1/0: ${show(r)}`);
    assert.ok(text(r).includes('ZeroDivisionError'), `text lacks ZeroDivisionError: ${show(r)}`);
    assert.equal(r.structuredContent?.error?.name, 'ZeroDivisionError', `structuredContent.error.name: ${show(r)}`);
    const { sc } = await py('x');
    assert.equal(sc.return_value, '41', 'x after the exception');
  }],

  ['bad arguments and unknown sandbox as tool errors', async () => {
    let r = await call('run_python', {});
    assert.equal(r.isError, true, `isError without code: ${show(r)}`);
    assert.ok(text(r).includes('code'), `the message does not mention code: ${show(r)}`);
    r = await call('run_python', { code: 42 });
    assert.equal(r.isError, true, `isError for code 42: ${show(r)}`);
    r = await call('run_python', { code: '1', sandbox_id: 'nope-123' });
    assert.equal(r.isError, true, `isError for sandbox nope-123: ${show(r)}`);
    assert.match(text(r), /not found/i, `the message does not say not found: ${show(r)}`);
  }],

  ['explicit sandboxes: create, isolation, list, destroy', async () => {
    let r = await call('create_sandbox', {});
    let sc = ok(r, 'create_sandbox');
    extraID = sc.sandbox_id;
    assert.ok(typeof extraID === 'string' && extraID !== '', `no sandbox_id: ${show(r)}`);
    assert.notEqual(extraID, defaultID, 'the new sandbox is the default one');
    await py('y = 7', { sandbox_id: extraID });
    ({ sc } = await py('y', { sandbox_id: extraID }));
    assert.equal(sc.return_value, '7', 'y in the new sandbox');
    assert.equal(sc.sandbox_id, extraID, 'sandbox_id of a run in the new sandbox');
    ({ sc } = await py("'y' in globals()"));
    assert.equal(sc.return_value, 'False', "'y' in globals() in the default sandbox");
    r = await call('list_sandboxes', {});
    sc = ok(r, 'list_sandboxes');
    const find = (id) => (sc.sandboxes ?? []).find((s) => s.sandbox_id === id);
    assert.ok(find(defaultID), `list lacks the default ${defaultID}: ${show(r)}`);
    assert.equal(find(defaultID).default, true, 'the default sandbox is marked default');
    assert.ok(find(extraID), `list lacks the new ${extraID}: ${show(r)}`);
    assert.ok(!find(extraID).default, 'the new sandbox is marked default');
    r = await call('destroy_sandbox', { sandbox_id: extraID });
    sc = ok(r, 'destroy_sandbox');
    assert.equal(sc.status, 'destroyed', 'status');
    assert.equal(sc.sandbox_id, extraID, 'sandbox_id of destroy_sandbox');
    extraDestroyed = true;
    r = await call('list_sandboxes', {});
    sc = ok(r, 'list_sandboxes after destroy');
    assert.ok(!find(extraID), `list still has ${extraID}: ${show(r)}`);
  }],
];

let failed = 0;
try {
  await client.connect(transport);
} catch (e) {
  const where = opts.mode === 'http' ? opts.url : [opts.command, ...opts.args].join(' ');
  const cause = e?.cause ? ` (${e.cause.message ?? e.cause})` : '';
  process.stderr.write(`FAIL connecting to ${where}: ${e?.message ?? e}${cause}\n`);
  process.exit(1);
}
const info = client.getServerVersion();
process.stdout.write(`connected to ${info?.name} ${info?.version} over ${opts.mode}${opts.mode === 'http' ? `, protocol ${transport.protocolVersion}` : ''}\n`);

for (const [i, [name, fn]] of scenarios.entries()) {
  try {
    await fn();
    process.stdout.write(`ok ${i + 1} ${name}\n`);
  } catch (e) {
    failed++;
    process.stderr.write(`FAIL ${i + 1} ${name}: ${e?.message ?? e}\n`);
  }
}
if (extraID && !extraDestroyed) {
  await call('destroy_sandbox', { sandbox_id: extraID }).catch(() => {});
}

process.stdout.write(JSON.stringify({ default_sandbox_id: defaultID }) + '\n');
const closing = Date.now();
try {
  if (opts.mode === 'http') await transport.terminateSession();
  await client.close();
} catch (e) {
  failed++;
  process.stderr.write(`FAIL closing the session: ${e?.message ?? e}\n`);
}
process.stdout.write(`closed the session in ${Date.now() - closing} ms\n`);
if (failed) {
  process.stderr.write(`${failed} of ${scenarios.length} scenarios failed\n`);
  process.exit(1);
}
