import { test } from 'tap'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readdirSync, rmSync, writeFileSync, cpSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'

const root = resolve(import.meta.dirname, '..')
const npm = (args: string[], cwd: string): string => execFileSync('npm', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, npm_config_audit: 'false', npm_config_fund: 'false', npm_config_update_notifier: 'false' } })

test('the packed tarball installs into fresh ESM and CommonJS host apps, signs in and serves a token; its types resolve', async (t) => {
  const work = mkdtempSync(join(tmpdir(), 'lr-ims-pack-'))
  t.teardown(() => rmSync(work, { recursive: true, force: true }))
  // --ignore-scripts: npm test has built dist/ already; rebuilding it here would pull it from under
  // the demo and browser tests running at the same time.
  npm(['pack', '--ignore-scripts', '--pack-destination', work], root)
  const tarball = readdirSync(work).find((name) => name.endsWith('.tgz'))
  t.ok(tarball, 'npm pack produced a tarball')
  const files = execFileSync('tar', ['-tzf', join(work, tarball!)], { encoding: 'utf8' }).split('\n')
  t.ok(files.includes('package/dist/index.js') && files.includes('package/dist/index.d.ts'), 'ships dist with types')
  t.notOk(files.some((f) => f.startsWith('package/test/') || f.startsWith('package/lib/') || (f.endsWith('.ts') && !f.endsWith('.d.ts'))), 'ships no sources or tests')

  const app = join(work, 'host-app')
  cpSync(join(root, 'test/fixtures/host-app'), app, { recursive: true })
  const pkg = (name: string): string => JSON.parse(execFileSync('node', ['-p', `JSON.stringify(require('${name}/package.json').version)`], { cwd: root, encoding: 'utf8' }))
  writeFileSync(join(app, 'package.json'), JSON.stringify({
    name: 'host-app',
    private: true,
    type: 'module',
    dependencies: { 'fastify-lightroom-ims': `file:../${tarball}`, fastify: pkg('fastify'), undici: pkg('undici'), ioredis: pkg('ioredis'), pg: pkg('pg') },
    devDependencies: { typescript: pkg('typescript'), '@types/node': pkg('@types/node'), '@types/pg': pkg('@types/pg') }
  }))
  // Everything the tarball needs is already in npm's cache from this repo's own install.
  npm(['install', '--prefer-offline', '--no-package-lock'], app)

  const out = JSON.parse(execFileSync('node', ['app.mjs'], { cwd: app, encoding: 'utf8' }).trim())
  t.equal(out.callback, 303, 'signed in through the mock IMS')
  t.equal(out.token, 200, 'request.lightroomToken() works')
  t.ok(out.tokenLength > 100)
  t.same(out.account, { email: 'ada@example.com' }, 'request.lightroomApi() reaches the mock Lightroom')
  t.equal(out.signedOut, 'LR_LOGIN_REQUIRED')
  t.equal(out.errorClass, 'function')

  const cjs = JSON.parse(execFileSync('node', ['app.cjs'], { cwd: app, encoding: 'utf8' }).trim())
  t.same(cjs, { userId: 'A1B2C3D4E5F6A7B8C9D0E1F2@AdobeID', account: { email: 'ada@example.com' }, signedOut: true }, 'a CommonJS host app require()s the package and its /testing entry')

  writeFileSync(join(app, 'tsconfig.json'), JSON.stringify({ compilerOptions: { module: 'nodenext', moduleResolution: 'nodenext', strict: true, noEmit: true, skipLibCheck: false, types: ['node'] }, files: ['types.ts'] }))
  const tsc = join(app, 'node_modules', 'typescript', 'bin', 'tsc')
  t.doesNotThrow(() => execFileSync('node', [tsc, '-p', '.'], { cwd: app, encoding: 'utf8', stdio: 'pipe' }), 'the host app type-checks against the published .d.ts files')
})
