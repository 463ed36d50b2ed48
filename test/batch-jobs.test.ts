/**
 * renewExpiring and reencryptAll as nightly jobs over many users: options checked at call time,
 * users in flight at once, IMS calls paced, abort, progress, a store failure that keeps the counts,
 * and reruns that pick up where a run stopped without renewing anyone twice.
 */
import { test } from 'tap'
import { encryptedStore, memoryBackend, type RenewReport } from '../index.js'
import { signInAll, userIds, watchedBackend } from './helpers/batch.js'
import { fakeClock } from './helpers/clock.js'
import { KEY_A, KEY_B, harness, type Harness } from './helpers/setup.js'

const DAY = 86_400_000

/** `count` users signed in, then a week and a day later: every grant is due for renewal. */
async function oldGrants (count: number, options: { backend?: ReturnType<typeof watchedBackend>, lockTtlMs?: number } = {}): Promise<Harness & { subs: string[] }> {
  const clock = fakeClock()
  const subs = userIds(count)
  const h = await harness({
    ims: { now: clock.now, users: subs.map((sub) => ({ sub })) },
    plugin: { now: clock.now },
    ...(options.backend === undefined ? {} : { backend: options.backend })
  })
  await signInAll(h, subs)
  clock.advance(8 * DAY)
  return { ...h, subs }
}

test('options are checked when the job is called, naming the option', async (t) => {
  const h = await oldGrants(1)
  t.teardown(h.close)
  const wrong: Array<[Record<string, unknown>, string]> = [
    [{ concurrency: 0 }, 'concurrency'],
    [{ concurrency: 2.5 }, 'concurrency'],
    [{ concurrency: '4' }, 'concurrency'],
    [{ concurrency: 1001 }, 'concurrency'],
    [{ maxPerSecond: 0 }, 'maxPerSecond'],
    [{ maxPerSecond: Number.NaN }, 'maxPerSecond'],
    [{ maxPerSecond: Infinity }, 'maxPerSecond'],
    [{ signal: { aborted: false } }, 'signal'],
    [{ onProgress: 'log' }, 'onProgress'],
    [{ olderThanSeconds: -1 }, 'olderThanSeconds'],
    [{ concurency: 4 }, 'concurency']
  ]
  for (const [options, option] of wrong) {
    await t.rejects(h.app.lightroom.renewExpiring(options as never), { name: 'LightroomConfigError', code: 'LR_INVALID_OPTION', option, message: new RegExp(`"${option}"`) }, JSON.stringify(options))
  }
  await t.rejects(h.app.lightroom.reencryptAll({ concurrency: -1 }), { code: 'LR_INVALID_OPTION', option: 'concurrency' })
  await t.rejects(h.app.lightroom.reencryptAll({ maxPerSecond: 5 } as never), { code: 'LR_INVALID_OPTION', option: 'maxPerSecond' }, 'reencryptAll makes no IMS calls to pace')
  t.equal(h.ims.count('token:refresh_token'), 0, 'nothing ran')
  t.match(await h.app.lightroom.renewExpiring({ olderThanSeconds: 0 }), { scanned: 1, renewed: 1, completed: true }, 'olderThanSeconds 0: every grant')
})

test('concurrency: that many users in flight at once, never more', async (t) => {
  const backend = watchedBackend()
  const h = await oldGrants(24, { backend })
  t.teardown(h.close)
  // A slow IMS keeps each refresh in flight long enough for the others to start.
  h.ims.fail('token:refresh_token', { delayMs: 40 }, 24)
  const report = await h.app.lightroom.renewExpiring({ concurrency: 6 })
  t.same(report, { scanned: 24, renewed: 24, busy: 0, failed: 0, loggedOut: 0, completed: true, aborted: false })
  t.equal(backend.locks.maxHeld, 6, 'six refresh locks held at once, not one after another and not more')
  t.equal(h.ims.count('token:refresh_token'), 24)
  t.match(await h.app.lightroom.renewExpiring({ concurrency: 6 }), { scanned: 24, renewed: 0 }, 'a rerun finds every grant young')
})

test('maxPerSecond: IMS refreshes start evenly spaced, not in bursts', async (t) => {
  const backend = watchedBackend()
  const h = await oldGrants(25, { backend })
  t.teardown(h.close)
  const started = performance.now()
  const report = await h.app.lightroom.renewExpiring({ maxPerSecond: 20, concurrency: 8 })
  const seconds = (performance.now() - started) / 1000
  t.match(report, { renewed: 25, completed: true })
  t.ok(seconds >= 24 / 20 - 0.05, `25 starts at 20 per second take at least 1.2 s (took ${seconds.toFixed(2)} s)`)
  const times = backend.locks.takenAt
  // Smooth: any quarter of a second holds about 5 starts (a timer's jitter may squeeze in one or two
  // more), never the 8 of a burst of `concurrency`, let alone the 20 of a per-second budget spent at once.
  const busiest = Math.max(...times.map((from) => times.filter((at) => at >= from && at < from + 250).length))
  t.ok(busiest <= 7, `at most 7 starts in any 250 ms (the busiest had ${busiest})`)
  const gaps = times.slice(1).map((at, i) => at - times[i]!)
  t.ok(gaps.filter((gap) => gap < 25).length <= 3, `starts are about 50 ms apart (${gaps.map((gap) => gap.toFixed(0)).join(' ')})`)
})

test('signal: stops starting users, finishes the ones in flight, resolves aborted; a rerun does the rest, nobody twice', async (t) => {
  const h = await oldGrants(20)
  t.teardown(h.close)
  const controller = new AbortController()
  let refreshed = 0
  h.app.lightroom.events.on('refresh', () => { if (++refreshed === 5) controller.abort() })
  const first = await h.app.lightroom.renewExpiring({ concurrency: 2, signal: controller.signal })
  t.match(first, { completed: false, aborted: true, failed: 0, loggedOut: 0 })
  t.ok(first.renewed >= 5 && first.renewed <= 7, `stopped soon after the abort (${first.renewed} renewed)`)
  t.equal(h.ims.count('token:refresh_token'), first.renewed, 'nothing was started after the run resolved')
  const rest = await h.app.lightroom.renewExpiring({ concurrency: 2 })
  t.match(rest, { scanned: 20, renewed: 20 - first.renewed, completed: true, aborted: false })
  t.equal(h.ims.count('token:refresh_token'), 20, 'each user renewed exactly once over both runs')
  for (const sub of h.subs) t.equal(h.ims.activeRefreshTokens(sub).length, 1, `${sub} still holds one working grant`)

  const already = AbortSignal.abort()
  t.same(await h.app.lightroom.renewExpiring({ signal: already, olderThanSeconds: 0 }),
    { scanned: 0, renewed: 0, busy: 0, failed: 0, loggedOut: 0, completed: false, aborted: true }, 'an aborted signal: nothing is started')
})

test('onProgress: copies of the running counts, a few times per second at most, and the final report last', async (t) => {
  const h = await oldGrants(30)
  t.teardown(h.close)
  const seen: RenewReport[] = []
  const started = performance.now()
  const report = await h.app.lightroom.renewExpiring({
    maxPerSecond: 20,
    onProgress: (progress) => {
      seen.push(progress)
      progress.renewed = -1 // a copy: the run's own counts cannot be changed from here
    }
  })
  const seconds = (performance.now() - started) / 1000
  t.same(seen.at(-1), { ...report, renewed: -1 }, 'the last call carries the final report')
  t.equal(report.renewed, 30)
  t.ok(seen.length >= 3, `called while running (${seen.length} calls over ${seconds.toFixed(2)} s)`)
  t.ok(seen.length <= seconds * 4 + 2, 'no more than four times per second')
  for (let i = 1; i < seen.length; i++) t.ok(seen[i]!.scanned >= seen[i - 1]!.scanned, 'counts only grow')
  t.ok(seen.slice(0, -1).every((progress) => !progress.completed), 'only the last one says completed')

  const failing = await h.app.lightroom.renewExpiring({ olderThanSeconds: 0, onProgress: () => { throw new Error('dashboard down') } })
  t.match(failing, { renewed: 30, completed: true }, 'a throwing onProgress does not stop the run')
  t.ok(h.logs.some((line) => line.includes('onProgress threw')), 'but it is logged')
})

test('a store failure mid-run rejects with LightroomBatchError carrying what was done; a rerun finishes', async (t) => {
  const backend = watchedBackend()
  const h = await oldGrants(30, { backend })
  t.teardown(h.close)
  let refreshed = 0
  h.app.lightroom.events.on('refresh', () => { if (++refreshed === 10) backend.failTokenReads = true })
  const error = await h.app.lightroom.renewExpiring({ concurrency: 3 }).then(() => undefined, (err: unknown) => err)
  t.match(error, { name: 'LightroomBatchError', code: 'LR_BATCH_INCOMPLETE', statusCode: 503, job: 'renewExpiring', cause: { code: 'LR_STORE_UNAVAILABLE' } })
  const partial = (error as { report: RenewReport }).report
  t.match(partial, { completed: false, aborted: false, failed: 0, loggedOut: 0 })
  t.ok(partial.renewed >= 10 && partial.renewed < 30, `the report counts the ${partial.renewed} renewed before the store went`)
  t.equal(partial.renewed, h.ims.count('token:refresh_token'), 'every IMS refresh made is in the report')
  t.equal((error as { publicMessage: string }).publicMessage, 'A batch job stopped before it finished')
  t.notOk((error as Error).message.includes('ECONNREFUSED'), 'the message names the cause by its code, not its text')
  t.ok(h.logs.some((line) => line.includes('batch job stopped by a failure')), 'logged')

  backend.failTokenReads = false
  const rest = await h.app.lightroom.renewExpiring({ concurrency: 3 })
  t.match(rest, { scanned: 30, renewed: 30 - partial.renewed, completed: true })
  t.equal(h.ims.count('token:refresh_token'), 30, 'nobody renewed twice, nobody left out')
})

test('a thousand users: the report is right and the scan streams through a handful of workers', async (t) => {
  const backend = watchedBackend()
  const h = await oldGrants(1000, { backend })
  t.teardown(h.close)
  const report = await h.app.lightroom.renewExpiring({ concurrency: 16 })
  t.same(report, { scanned: 1000, renewed: 1000, busy: 0, failed: 0, loggedOut: 0, completed: true, aborted: false })
  t.equal(h.ims.count('token:refresh_token'), 1000)
  t.ok(backend.locks.maxHeld <= 16, 'never more than the workers in flight')
  t.match(await h.app.lightroom.renewExpiring({ concurrency: 16 }), { scanned: 1000, renewed: 0, completed: true })
})

test('reencryptAll: concurrency, signal, onProgress and a failure that keeps the counts', async (t) => {
  const inner = memoryBackend()
  const old = encryptedStore(inner, { keys: [KEY_A] })
  for (let i = 0; i < 200; i++) await old.set(`tokens:user${i}`, { i }, DAY)
  let writes = 0
  let failReads = false
  const controller = new AbortController()
  const backend = {
    ...inner,
    get: async (key: string) => {
      if (failReads) throw new Error('store down')
      return await inner.get(key)
    },
    compareAndSet: async (key: string, expected: string | undefined, value: string, ttlMs?: number) => {
      if (++writes === 50) controller.abort()
      return await inner.compareAndSet(key, expected, value, ttlMs)
    }
  }
  const rotated = encryptedStore(backend, { keys: [KEY_B, KEY_A] })
  const progress: unknown[] = []
  const first = await rotated.reencryptAll('tokens:', { concurrency: 8, signal: controller.signal, onProgress: (report) => progress.push(report) })
  t.match(first, { completed: false, aborted: true, failed: 0 })
  t.ok(first.reencrypted >= 50 && first.reencrypted <= 58, `stopped within a round of workers (${first.reencrypted})`)
  t.same(progress.at(-1), first, 'onProgress got the final counts')

  let reads = 0
  const failing = encryptedStore({ ...backend, get: async (key: string) => { if (++reads > 100) failReads = true; return await backend.get(key) } }, { keys: [KEY_B, KEY_A] })
  const error = await failing.reencryptAll('tokens:', { concurrency: 4 }).then(() => undefined, (err: unknown) => err)
  t.match(error, { name: 'LightroomBatchError', code: 'LR_BATCH_INCOMPLETE', job: 'reencryptAll', report: { completed: false, aborted: false } })
  const partial = (error as { report: { reencrypted: number } }).report
  t.ok(partial.reencrypted > 0, `the counts of the work done survive the failure (${partial.reencrypted})`)

  failReads = false
  const rest = await rotated.reencryptAll('tokens:', { concurrency: 8 })
  t.match(rest, { scanned: 200, reencrypted: 200 - first.reencrypted - partial.reencrypted, completed: true })
  const stillOld: string[] = []
  for await (const key of inner.scan('tokens:')) if (!(await inner.get(key))!.startsWith('v1.b.')) stillOld.push(key)
  t.same(stillOld, [], 'every record under the new key')
})
