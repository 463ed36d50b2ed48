import { test } from 'tap'
import { safeReturnTo } from '../lib/routes/return-to.js'

test('same-origin relative paths are kept, normalised', async (t) => {
  t.equal(safeReturnTo('/'), '/')
  t.equal(safeReturnTo('/photos?sort=date#top'), '/photos?sort=date#top')
  t.equal(safeReturnTo('/a/../b'), '/b')
  t.equal(safeReturnTo('/caf%C3%A9'), '/caf%C3%A9')
})

test('anything that could leave the origin is refused', async (t) => {
  const attacks = [
    '//evil.example', '/\\evil.example', '\\\\evil.example', 'https://evil.example', 'https:evil.example', 'http:/evil.example',
    'javascript:alert(1)', 'evil.example', '', ' /x', '/\t/evil.example', '/\n/evil.example', '/\r\n/evil.example',
    '/.//evil.example', '/..//evil.example', '/x/..//evil.example', '/%2F/evil.example/../..//evil', `/${'a'.repeat(3000)}`,
    '/\u0000x', '/\u007f', undefined, null, 42, ['/a', '/b'], { toString: () => '/x' }
  ]
  for (const attack of attacks) {
    const result = safeReturnTo(attack)
    t.ok(result === undefined || (result.startsWith('/') && !result.startsWith('//')), `safe for ${JSON.stringify(attack)}`)
    if (result !== undefined) t.equal(new URL(result, 'https://app.test').origin, 'https://app.test')
  }
  t.equal(safeReturnTo('//evil.example'), undefined)
  t.equal(safeReturnTo('/.//evil.example'), undefined)
  t.equal(safeReturnTo('/\\evil.example'), undefined)
})
