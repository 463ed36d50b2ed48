/**
 * The README's code blocks cannot drift from the package: every JavaScript/TypeScript block must at
 * least parse, and every block marked as a complete program is run against the built package
 * (imported by its own name, as a user would). `<!-- readme-test: program -->` blocks must exit 0
 * by themselves; `<!-- readme-test: server -->` blocks must start listening and then sign a user in
 * through their own routes.
 */
import { test } from 'tap'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import ts from 'typescript'
import { request } from 'undici'
import { freePort } from './helpers/ports.js'

const root = resolve(import.meta.dirname, '..')
// Inside the package, so that `import 'fastify-lightroom-ims'` resolves to this package's dist/.
const work = join(root, 'test', 'output', 'readme')

interface Block { line: number, kind: 'program' | 'server' | 'fragment', lang: string, code: string }

function readmeBlocks (): Block[] {
  const text = readFileSync(join(root, 'README.md'), 'utf8')
  const blocks: Block[] = []
  for (const match of text.matchAll(/(?:<!-- readme-test: (program|server) -->\n)?```(ts|js)\n([\s\S]*?)```/g)) {
    const line = text.slice(0, match.index).split('\n').length
    blocks.push({ line, kind: (match[1] as Block['kind'] | undefined) ?? 'fragment', lang: match[2]!, code: match[3]! })
  }
  return blocks
}

function toModule (block: Block): string {
  const out = ts.transpileModule(block.code, { reportDiagnostics: true, compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 } })
  const problems = (out.diagnostics ?? []).map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'))
  if (problems.length > 0) throw new Error(`README block at line ${block.line} does not parse: ${problems.join('; ')}`)
  return out.outputText
}

function write (block: Block): string {
  mkdirSync(work, { recursive: true })
  const file = join(work, `readme-line-${block.line}.mjs`)
  writeFileSync(file, toModule(block))
  return file
}

const blocks = readmeBlocks()

test('every JavaScript and TypeScript block of the README parses', async (t) => {
  t.ok(blocks.length >= 6, `found ${blocks.length} blocks`)
  for (const block of blocks) t.doesNotThrow(() => toModule(block), `line ${block.line} (${block.kind})`)
})

test('every README block marked as a program runs to completion against the built package', async (t) => {
  const programs = blocks.filter((block) => block.kind === 'program')
  t.ok(programs.length >= 2, 'the testing section has its programs')
  for (const block of programs) {
    const child = spawn(process.execPath, [write(block)], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] })
    let output = ''
    child.stdout.on('data', (chunk) => { output += chunk })
    child.stderr.on('data', (chunk) => { output += chunk })
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000)
    const [code] = await once(child, 'exit')
    clearTimeout(timer)
    t.equal(code, 0, `README line ${block.line} exits 0${code === 0 ? '' : `: ${output.slice(0, 2000)}`}`)
  }
})

function cookies (setCookie: string | string[] | undefined, jar: Map<string, string>): string {
  for (const line of ([] as string[]).concat(setCookie ?? [])) {
    const pair = line.split(';')[0]!
    const eq = pair.indexOf('=')
    if (pair.slice(eq + 1) === '') jar.delete(pair.slice(0, eq))
    else jar.set(pair.slice(0, eq), pair.slice(eq + 1))
  }
  return [...jar].map(([name, value]) => `${name}=${value}`).join('; ')
}

test('the README\'s offline Quick start serves, and a user signs in through its mock IMS as pasted', async (t) => {
  const servers = blocks.filter((block) => block.kind === 'server')
  t.equal(servers.length, 1, 'one server block: the offline Quick start')
  const port = await freePort()
  const child = spawn(process.execPath, [write(servers[0]!)], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, PORT: String(port) } })
  t.teardown(() => { child.kill('SIGKILL') })
  let output = ''
  child.stderr.on('data', (chunk) => { output += chunk })
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => { reject(new Error(`never listened: ${output}`)) }, 30_000)
    child.stdout.on('data', (chunk) => {
      output += chunk
      if (output.includes('Server listening')) { clearTimeout(timer); resolve() }
    })
    child.on('exit', (code) => { clearTimeout(timer); reject(new Error(`exited ${code}: ${output}`)) })
  })
  const app = `http://localhost:${port}`
  const jar = new Map<string, string>()
  const first = await request(`${app}/`, { headers: { accept: 'text/html' } })
  await first.body.dump()
  t.equal(first.statusCode, 302, 'signed out: sent to sign in')
  const login = await request(`${app}${first.headers.location as string}`)
  await login.body.dump()
  cookies(login.headers['set-cookie'], jar)
  const authorizeUrl = new URL(login.headers.location as string)
  const consent = await request(authorizeUrl)
  t.match(await consent.body.text(), /Allow/, 'the mock Adobe consent page')
  const form = new URLSearchParams(authorizeUrl.searchParams)
  form.set('decision', 'allow')
  const allowed = await request(`${authorizeUrl.origin}${authorizeUrl.pathname}`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: form.toString() })
  await allowed.body.dump()
  const callback = new URL(allowed.headers.location as string)
  t.equal(callback.origin, app, 'IMS sends the browser back to the app')
  const done = await request(callback, { headers: { cookie: cookies(undefined, jar) } })
  await done.body.dump()
  t.equal(done.statusCode, 303)
  const home = await request(`${app}${done.headers.location as string}`, { headers: { cookie: cookies(done.headers['set-cookie'], jar) } })
  t.equal(home.statusCode, 200)
  t.same(await home.body.json(), { signedInAs: 'ada@example.com', plan: 'subscriber' })
})
