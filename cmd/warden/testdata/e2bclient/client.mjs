// Drives Warden's E2B-compatible surface with the official E2B JS SDKs
// (e2b and @e2b/code-interpreter, unmodified) and checks that they behave
// as they do against E2B.
//
//   E2B_API_URL=http://127.0.0.1:PORT E2B_SANDBOX_URL=http://127.0.0.1:PORT \
//   E2B_API_KEY=e2b_<40 hex> node client.mjs [--only 5,7,...]
//
// --only runs the scenarios listed, and scenario 1, whose sandbox the
// others use.
//
// Prints "ok <n> <scenario>" per passed scenario, then one JSON line
// {"sandbox_ids": [...], "left": [...]}: every sandbox the script made (all
// killed at the end) and those that Sandbox.list() still showed afterwards.
// Exits 1 if any scenario failed (each failure is printed to stderr with the
// reason) or a sandbox was left, 2 on bad usage.
import assert from 'node:assert/strict';
import process from 'node:process';

import {
  AuthenticationError, CommandExitError, FileNotFoundError, NotFoundError,
  Sandbox, SandboxNotFoundError, TimeoutError,
} from '@e2b/code-interpreter';

const HELP = 'usage: E2B_API_URL=<url> E2B_SANDBOX_URL=<url> E2B_API_KEY=<key> node client.mjs [--only 5,7,...]';

function usage(msg) {
  process.stderr.write(`client.mjs: ${msg}\n${HELP}\n`);
  process.exit(2);
}

function parseArgs(argv) {
  const o = { only: null };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--only' && argv[i + 1] !== undefined) {
      o.only = new Set(argv[++i].split(',').map(Number));
      if ([...o.only].some((n) => !Number.isInteger(n) || n < 1)) usage(`bad --only list ${argv[i]}`);
    } else usage(`unexpected argument ${argv[i]}`);
  }
  for (const v of ['E2B_API_URL', 'E2B_SANDBOX_URL', 'E2B_API_KEY']) {
    if (!process.env[v]) usage(`${v} is not set`);
  }
  return o;
}

const opts = parseArgs(process.argv.slice(2));
// The SDK reads the three variables itself; a fresh object per call to
// Sandbox.connect gets a fresh ConnectionConfig from them.
const conn = () => ({
  apiKey: process.env.E2B_API_KEY,
  apiUrl: process.env.E2B_API_URL,
  sandboxUrl: process.env.E2B_SANDBOX_URL,
});

// A sandbox's first creation can extract the image root (bubblewrap) or
// start a container on a loaded machine: allow well over the usual.
const CREATE_TIMEOUT_MS = 150_000;
// Calls that should be quick, so that a server that serialises them fails
// the scenario instead of hanging it.
const QUICK = { timeoutMs: 30_000, requestTimeoutMs: 30_000 };

const made = []; // every sandbox id this script created, in order
const track = (sbx) => { made.push(sbx.sandboxId); return sbx; };
const create = async (o = {}) => track(await Sandbox.create({ requestTimeoutMs: CREATE_TIMEOUT_MS, ...o }));

const show = (v) => {
  try {
    return JSON.stringify(v, (k, x) => (typeof x === 'string' && x.length > 300 ? x.slice(0, 300) + '…' : x)).slice(0, 2000);
  } catch {
    return String(v);
  }
};
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const errName = (e) => `${e?.constructor?.name ?? typeof e}: ${e?.message ?? e}`;

// within bounds a promise: it rejects with what did not finish.
async function within(ms, p, what) {
  let timer;
  const t = new Promise((_, rej) => { timer = setTimeout(() => rej(new Error(`${what} did not finish within ${ms} ms`)), ms); });
  try {
    return await Promise.race([p, t]);
  } finally {
    clearTimeout(timer);
  }
}

// rejects runs fn, which must throw an instance of one of classes; it
// returns the error.
async function rejects(fn, classes, what) {
  let r;
  try {
    r = await fn();
  } catch (e) {
    assert.ok(classes.some((c) => e instanceof c),
      `${what}: threw ${errName(e)}, want ${classes.map((c) => c.name).join(' or ')}`);
    return e;
  }
  assert.fail(`${what}: succeeded with ${show(r)}, want ${classes.map((c) => c.name).join(' or ')}`);
}

// run runs code with runCode and returns the execution, failing on an
// error unless allowed.
async function run(sbx, code, o = {}, allowError = false) {
  const ex = await sbx.runCode(code, { ...QUICK, ...o });
  if (!allowError) assert.equal(ex.error, undefined, `runCode ${JSON.stringify(code)}: error ${show(ex.error)}`);
  return ex;
}

// listAll returns every sandbox on every page of Sandbox.list.
async function listAll(o = {}) {
  const p = Sandbox.list({ ...conn(), ...o });
  const out = [];
  for (let pages = 0; p.hasNext; pages++) {
    assert.ok(pages < 100, 'Sandbox.list: more than 100 pages');
    out.push(...await p.nextItems());
  }
  return out;
}

let sbx = null; // the main code-interpreter sandbox, x = 41 in it
const main = () => {
  assert.ok(sbx, 'no sandbox: scenario 1 did not create one');
  return sbx;
};

const scenarios = [
  ['create a code-interpreter sandbox; state kept across runCode', async () => {
    sbx = await create();
    assert.match(sbx.sandboxId, /^[a-z0-9]+$/, `sandbox id ${JSON.stringify(sbx.sandboxId)}`);
    let ex = await run(sbx, 'x = 41');
    assert.equal(ex.text, undefined, `x = 41 has a main result: ${show(ex.results)}`);
    ex = await run(sbx, 'x + 1');
    assert.equal(ex.text, '42', `text of x + 1: ${show(ex)}`);
    const main = ex.results.filter((r) => r.isMainResult);
    assert.equal(main.length, 1, `one main result: ${show(ex.results)}`);
  }],

  ['stdout and stderr: logs and callbacks', async () => {
    const out = [], err = [];
    const ex = await run(main(), "print('out'); import sys; print('err', file=sys.stderr)", {
      onStdout: (m) => out.push(m), onStderr: (m) => err.push(m),
    });
    assert.equal(ex.logs.stdout.join(''), 'out\n', `logs.stdout: ${show(ex.logs)}`);
    assert.equal(ex.logs.stderr.join(''), 'err\n', `logs.stderr: ${show(ex.logs)}`);
    assert.ok(out.length > 0, 'onStdout was not called');
    assert.equal(out.map((m) => m.line).join(''), 'out\n', `onStdout lines: ${show(out)}`);
    assert.ok(err.length > 0, 'onStderr was not called');
    assert.equal(ex.text, undefined, `a print has a main result: ${show(ex.results)}`);
  }],

  ['an error with traceback; the session survives', async () => {
    const seen = [];
    const ex = await run(main(), '1/0', { onError: (e) => seen.push(e) }, true);
    assert.ok(ex.error, `no error for 1/0: ${show(ex)}`);
    assert.equal(ex.error.name, 'ZeroDivisionError', `error.name: ${show(ex.error)}`);
    assert.match(ex.error.value, /division by zero/, `error.value: ${show(ex.error)}`);
    assert.match(ex.error.traceback, /ZeroDivisionError/, `traceback: ${show(ex.error)}`);
    assert.equal(seen.length, 1, `onError calls: ${show(seen)}`);
    const after = await run(main(), 'x');
    assert.equal(after.text, '41', `x after the error: ${show(after)}`);
  }],

  ['rich results: a matplotlib PNG and a pandas HTML table', async () => {
    let ex = await run(main(), 'import matplotlib.pyplot as plt\nplt.plot([1, 2, 3], [1, 4, 9])\nplt.show()', { timeoutMs: 90_000 });
    const pngs = ex.results.filter((r) => r.png);
    assert.equal(pngs.length, 1, `results with png: ${show(ex.results)}`);
    const png = Buffer.from(pngs[0].png, 'base64');
    assert.ok(png.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])),
      `png does not start with the PNG signature: ${png.subarray(0, 8).toString('hex')}`);
    ex = await run(main(), "import pandas as pd\npd.DataFrame({'a': [1, 2], 'b': [3, 4]})", { timeoutMs: 90_000 });
    const html = ex.results.find((r) => r.html);
    assert.ok(html, `no result with html: ${show(ex.results)}`);
    assert.match(html.html, /<table/, `html: ${show(html.html)}`);
    assert.equal(html.isMainResult, true, `the DataFrame is not the main result: ${show(ex.results)}`);
  }],

  ['commands: exit codes, stdout, stderr, env vars', async () => {
    const s = main();
    const ok = await s.commands.run('echo $GREETING; exit 0', { envs: { GREETING: 'hi' }, ...QUICK });
    assert.equal(ok.exitCode, 0, `exitCode: ${show(ok)}`);
    assert.equal(ok.stdout, 'hi\n', `stdout: ${show(ok)}`);
    assert.equal(ok.stderr, '', `stderr: ${show(ok)}`);
    const pwd = await s.commands.run('pwd; echo $HOME', QUICK);
    assert.equal(pwd.stdout, '/home/user\n/home/user\n', `working directory and HOME: ${show(pwd)}`);
    const e = await rejects(() => s.commands.run('echo partial; echo oops >&2; exit 3', QUICK),
      [CommandExitError], 'a command that exits 3');
    assert.equal(e.exitCode, 3, `exitCode: ${show(e.result)}`);
    assert.equal(e.stdout, 'partial\n', `stdout: ${show(e.result)}`);
    assert.equal(e.stderr, 'oops\n', `stderr: ${show(e.result)}`);
  }],

  ['a background command beside the session, killed', async () => {
    const s = main();
    const h = await s.commands.run('sleep 300', { background: true, requestTimeoutMs: 30_000 });
    let waited = null;
    try {
      assert.ok(Number.isInteger(h.pid) && h.pid > 0, `pid: ${show(h.pid)}`);
      let list = await s.commands.list(QUICK);
      assert.ok(list.some((p) => p.pid === h.pid), `commands.list lacks pid ${h.pid}: ${show(list)}`);
      const ex = await within(40_000, run(s, '1+1'), 'runCode 1+1 beside the background command');
      assert.equal(ex.text, '2', `runCode 1+1 beside it: ${show(ex)}`);
      const still = await within(40_000, s.commands.run('echo still', QUICK), 'echo still beside the background command');
      assert.equal(still.stdout, 'still\n', `echo still beside it: ${show(still)}`);
      assert.equal(await h.kill(), true, 'handle.kill()');
      waited = within(15_000, h.wait().then((r) => `resolved ${show(r)}`, (e) => `rejected ${errName(e)}`), 'wait after kill');
      for (const deadline = Date.now() + 10_000; ; await sleep(200)) {
        list = await s.commands.list(QUICK);
        if (!list.some((p) => p.pid === h.pid)) break;
        assert.ok(Date.now() < deadline, `pid ${h.pid} still listed 10 s after the kill: ${show(list)}`);
      }
      await waited;
      assert.equal(await s.commands.kill(h.pid, QUICK), false, 'commands.kill of the dead pid');
    } finally {
      if (!waited) await h.kill().catch(() => {});
    }
  }],

  ['files: SDK and code see the same files under /home/user', async () => {
    const s = main();
    const w = await s.files.write('/home/user/a.txt', 'hello', QUICK);
    assert.equal(w.path, '/home/user/a.txt', `files.write: ${show(w)}`);
    let ex = await run(s, "open('/home/user/a.txt').read()");
    assert.equal(ex.text, 'hello', `code reading a.txt: ${show(ex)}`);
    await run(s, "with open('/home/user/b.txt', 'w') as f:\n    f.write('from code')");
    assert.equal(await s.files.read('/home/user/b.txt', QUICK), 'from code', 'files.read b.txt');
    assert.equal(await s.files.read('a.txt', QUICK), 'hello', 'files.read of a relative path (home)');
    let names = (await s.files.list('/home/user', QUICK)).map((e) => e.name);
    for (const n of ['a.txt', 'b.txt']) assert.ok(names.includes(n), `files.list /home/user lacks ${n}: ${show(names)}`);
    const a = (await s.files.list('/home/user', QUICK)).find((e) => e.name === 'a.txt');
    assert.equal(a.type, 'file', `type of a.txt: ${show(a)}`);
    assert.equal(a.path, '/home/user/a.txt', `path of a.txt: ${show(a)}`);
    assert.equal(await s.files.exists('/home/user/a.txt', QUICK), true, 'exists a.txt');
    assert.equal(await s.files.exists('/home/user/nope.txt', QUICK), false, 'exists nope.txt');
    assert.equal(await s.files.makeDir('/home/user/d/e', QUICK), true, 'makeDir d/e');
    assert.equal(await s.files.makeDir('/home/user/d/e', QUICK), false, 'makeDir d/e again');
    const info = await s.files.getInfo('/home/user/d', QUICK);
    assert.equal(info.type, 'dir', `getInfo d: ${show(info)}`);
    const moved = await s.files.rename('/home/user/a.txt', '/home/user/d/c.txt', QUICK);
    assert.equal(moved.path, '/home/user/d/c.txt', `rename: ${show(moved)}`);
    assert.equal(await s.files.exists('/home/user/a.txt', QUICK), false, 'exists a.txt after rename');
    ex = await run(s, "open('/home/user/d/c.txt').read()");
    assert.equal(ex.text, 'hello', `code reading the renamed file: ${show(ex)}`);
    await s.files.remove('/home/user/b.txt', QUICK);
    assert.equal(await s.files.exists('/home/user/b.txt', QUICK), false, 'exists b.txt after remove');
    await s.files.remove('/home/user/d', QUICK);
    names = (await s.files.list('/home/user', QUICK)).map((e) => e.name);
    assert.ok(!names.includes('d') && !names.includes('b.txt'), `files.list after removes: ${show(names)}`);
    ex = await run(s, "import os\nos.path.exists('/home/user/d')");
    assert.equal(ex.text, 'False', `code sees d after remove: ${show(ex)}`);
    await rejects(() => s.files.read('/home/user/missing.txt', QUICK), [FileNotFoundError, NotFoundError], 'files.read of a missing file');
    // Put a.txt back: scenario 12 looks for it in the other sandbox.
    await s.files.write('/home/user/a.txt', 'hello', QUICK);
  }],

  ['connect from a second client sees the same session', async () => {
    const id = main().sandboxId;
    const other = await Sandbox.connect(id, { ...conn(), requestTimeoutMs: 30_000 });
    assert.equal(other.sandboxId, id, 'sandboxId after connect');
    assert.notEqual(other.connectionConfig, main().connectionConfig, 'the same ConnectionConfig');
    const ex = await run(other, 'x');
    assert.equal(ex.text, '41', `x from the second client: ${show(ex)}`);
    const r = await other.commands.run('cat /home/user/a.txt', QUICK);
    assert.equal(r.stdout, 'hello', `a.txt from the second client: ${show(r)}`);
    assert.equal(await other.isRunning(QUICK), true, 'isRunning from the second client');
  }],

  ['timeout: a sandbox is gone when its lifetime runs out', async () => {
    const before = Date.now();
    const a = await create({ timeoutMs: 5000 });
    const b = await create();
    await b.setTimeout(4000, QUICK);
    const after = Date.now();
    const info = await a.getInfo(QUICK);
    assert.ok(info.endAt.getTime() >= before + 4000 && info.endAt.getTime() <= after + 6000,
      `endAt of a 5 s sandbox is ${info.endAt.toISOString()}, created between ${new Date(before).toISOString()} and ${new Date(after).toISOString()}`);
    const ids = [a.sandboxId, b.sandboxId];
    let gone;
    for (const deadline = Date.now() + 60_000; ; await sleep(500)) {
      const listed = new Set((await listAll()).map((x) => x.sandboxId));
      const running = await Promise.all([a, b].map((s) => s.isRunning(QUICK).catch((e) => errName(e))));
      gone = ids.map((id, i) => !listed.has(id) && running[i] === false);
      if (gone.every(Boolean)) break;
      assert.ok(Date.now() < deadline,
        `60 s after a 5 s lifetime: listed ${ids.map((id) => listed.has(id))}, isRunning ${show(running)} (create with timeoutMs, then setTimeout(4000))`);
    }
    process.stdout.write(`   # both gone ${((Date.now() - after) / 1000).toFixed(1)} s after creation\n`);
    await rejects(() => Sandbox.connect(a.sandboxId, conn()), [SandboxNotFoundError], 'connect to a timed-out sandbox');
  }],

  ['list, kill, kill again, and calls on a killed sandbox', async () => {
    const s = await create();
    let list = await listAll();
    for (const id of [main().sandboxId, s.sandboxId]) {
      const e = list.find((x) => x.sandboxId === id);
      assert.ok(e, `Sandbox.list lacks ${id}: ${show(list)}`);
      assert.equal(e.state, 'running', `state of ${id}: ${show(e)}`);
      assert.equal(e.templateId, 'code-interpreter-v1', `templateId of ${id}: ${show(e)}`);
    }
    const info = await s.getInfo(QUICK);
    assert.equal(info.sandboxId, s.sandboxId, `getInfo: ${show(info)}`);
    assert.equal(info.state, 'running', `getInfo state: ${show(info)}`);
    assert.equal(await s.kill(QUICK), true, 'kill');
    assert.equal(await s.kill(QUICK), false, 'kill again');
    assert.equal(await Sandbox.kill(s.sandboxId, conn()), false, 'Sandbox.kill of the killed id');
    list = await listAll();
    assert.ok(!list.some((x) => x.sandboxId === s.sandboxId), `Sandbox.list still has the killed ${s.sandboxId}`);
    assert.equal(await s.isRunning(QUICK), false, 'isRunning after kill');
    const gone = [NotFoundError, TimeoutError];
    await rejects(() => s.runCode('1', QUICK), gone, 'runCode on a killed sandbox');
    await rejects(() => s.commands.run('true', QUICK), gone, 'commands.run on a killed sandbox');
    await rejects(() => s.files.read('/home/user/a.txt', QUICK), gone, 'files.read on a killed sandbox');
    await rejects(() => s.files.list('/home/user', QUICK), gone, 'files.list on a killed sandbox');
    await rejects(() => s.getInfo(QUICK), [SandboxNotFoundError, NotFoundError], 'getInfo on a killed sandbox');
    await rejects(() => s.setTimeout(60_000, QUICK), [SandboxNotFoundError, NotFoundError], 'setTimeout on a killed sandbox');
  }],

  ['unknown ids', async () => {
    await rejects(() => Sandbox.connect('doesnotexist0000', conn()), [SandboxNotFoundError], 'Sandbox.connect of an unknown id');
    await rejects(() => Sandbox.getInfo('doesnotexist0000', conn()), [SandboxNotFoundError, NotFoundError], 'Sandbox.getInfo of an unknown id');
    assert.equal(await Sandbox.kill('doesnotexist0000', conn()), false, 'Sandbox.kill of an unknown id');
    await rejects(() => Sandbox.setTimeout('doesnotexist0000', 60_000, conn()), [SandboxNotFoundError, NotFoundError], 'Sandbox.setTimeout of an unknown id');
  }],

  ['two sandboxes are isolated', async () => {
    const s1 = main();
    const s2 = await create();
    assert.notEqual(s2.sandboxId, s1.sandboxId, 'a second sandbox with the same id');
    let ex = await run(s2, "'x' in globals()");
    assert.equal(ex.text, 'False', `x in the second sandbox: ${show(ex)}`);
    ex = await run(s2, "import os\nos.path.exists('/home/user/a.txt')");
    assert.equal(ex.text, 'False', `a.txt of the first sandbox seen by code in the second: ${show(ex)}`);
    assert.equal(await s2.files.exists('/home/user/a.txt', QUICK), false, 'a.txt of the first sandbox in the second (files.exists)');
    await run(s2, 'y = 7');
    await s2.files.write('/home/user/only2.txt', 'two', QUICK);
    ex = await run(s1, "'y' in globals()");
    assert.equal(ex.text, 'False', `y of the second sandbox in the first: ${show(ex)}`);
    assert.equal(await s1.files.exists('/home/user/only2.txt', QUICK), false, 'only2.txt of the second sandbox in the first');
    ex = await run(s1, 'x');
    assert.equal(ex.text, '41', `x in the first after the second ran: ${show(ex)}`);
    assert.equal(await s2.kill(QUICK), true, 'kill the second sandbox');
  }],

  ['a wrong API key is refused', async () => {
    const wrong = { ...conn(), apiKey: 'e2b_' + '0'.repeat(40) };
    await rejects(() => Sandbox.create({ ...wrong, requestTimeoutMs: 30_000 }), [AuthenticationError], 'create with a wrong key');
    await rejects(() => Sandbox.list(wrong).nextItems(), [AuthenticationError], 'list with a wrong key');
    const id = main().sandboxId;
    await rejects(() => Sandbox.connect(id, wrong), [AuthenticationError], 'connect with a wrong key');
    await rejects(() => Sandbox.kill(id, wrong), [AuthenticationError], 'kill with a wrong key');
    assert.equal(await main().isRunning(QUICK), true, 'the sandbox after a kill with a wrong key');
  }],
];

let failed = 0;
for (const [i, [name, fn]] of scenarios.entries()) {
  // Scenario 1 always runs: the others use its sandbox.
  if (opts.only && i > 0 && !opts.only.has(i + 1)) continue;
  const start = Date.now();
  try {
    await fn();
    process.stdout.write(`ok ${i + 1} ${name} (${Date.now() - start} ms)\n`);
  } catch (e) {
    failed++;
    process.stderr.write(`FAIL ${i + 1} ${name}: ${e instanceof assert.AssertionError ? e.message : errName(e)}\n`);
  }
}

// Kill every sandbox made here (those already gone answer false), then
// make sure the list shows none of them.
for (const id of made) {
  try {
    await Sandbox.kill(id, { ...conn(), requestTimeoutMs: 60_000 });
  } catch (e) {
    failed++;
    process.stderr.write(`FAIL killing ${id} at the end: ${errName(e)}\n`);
  }
}
let left = [];
try {
  const listed = new Set((await listAll()).map((x) => x.sandboxId));
  left = made.filter((id) => listed.has(id));
  if (left.length) {
    failed++;
    process.stderr.write(`FAIL Sandbox.list still shows ${left.join(', ')} after they were killed\n`);
  }
} catch (e) {
  failed++;
  process.stderr.write(`FAIL listing at the end: ${errName(e)}\n`);
}
process.stdout.write(JSON.stringify({ sandbox_ids: made, left }) + '\n');
if (failed) process.stderr.write(`${failed} failure(s)\n`);
// Exit now: runCode leaves its request timer running when the request
// fails (@e2b/code-interpreter 2.8.0), which would hold node for
// requestTimeoutMs.
process.exit(failed ? 1 : 0);
