/**
 * The pure parts of Redis Cluster support, without a Redis: which user a key belongs to, where the
 * standalone and Cluster layouts put keys (and back), and the slot of a key.
 */
import { createHash } from 'node:crypto'
import { test } from 'tap'
import { tokenKey } from '../lib/auth/token-manager.js'
import { sessionKey } from '../lib/auth/session.js'
import { userTagOf } from '../lib/store/user-slot.js'
import { clusterLayout, standaloneLayout } from '../lib/store/redis/key-layout.js'
import { crc16, groupBySlot, keySlot } from '../lib/store/redis/key-slot.js'

const b64 = (text: string): string => Buffer.from(text, 'utf8').toString('base64url')
const hash = createHash('sha256').update('a session id').digest('base64url')

test('userTagOf: base64url(userId) for a user\'s token key, new-format session key and refresh lock', async (t) => {
  for (const userId of ['u1@AdobeID', 'ünï{c}ødé', 'a.b:c', '}{']) {
    t.equal(userTagOf(tokenKey(userId)), b64(userId), `tokens:${userId}`)
    t.equal(userTagOf(`session:${b64(userId)}.${hash}`), b64(userId), 'its new-format session')
    t.equal(userTagOf(`lock:refresh:${userId}`), b64(userId), 'its refresh lock')
    t.notOk(/[{}]/.test(b64(userId)), 'never a brace in a tag')
  }
  t.equal(userTagOf(sessionKey('a session id')), undefined, 'an old-format session (session:<hash>) has no user')
  t.equal(userTagOf('session:.hash'), undefined, 'nor one with an empty user part')
  t.equal(userTagOf('session:not base64.hash'), undefined, 'nor one whose user part is not base64url')
  t.equal(userTagOf('tokens:'), undefined, 'an empty user id: no tag (Redis ignores an empty one)')
  t.equal(userTagOf('lock:refresh:'), undefined)
  for (const key of ['flow:abc', 'lock:other', 'token:u1', 'xtokens:u1', '']) t.equal(userTagOf(key), undefined, `"${key}" belongs to no user`)
})

test('the standalone layout is byte-for-byte the layout from before Cluster support', async (t) => {
  const layout = standaloneLayout('lr:')
  t.equal(layout.record('tokens:u1@AdobeID'), 'lr:tokens:u1@AdobeID')
  t.equal(layout.record(`session:${b64('u1')}.${hash}`), `lr:session:${b64('u1')}.${hash}`)
  t.equal(layout.lock('refresh:u1'), 'lr:lock:refresh:u1')
  t.equal(layout.pattern('tok*'), 'lr:tok\\**')
  t.equal(layout.recordOf('lr:tokens:u1'), 'tokens:u1')
  t.equal(layout.recordOf('lr:lock:refresh:u1'), undefined, 'locks are not records')
})

test('the Cluster layout tags a user\'s keys with the user, and scan maps them back', async (t) => {
  const layout = clusterLayout('lr:')
  const tag = b64('u1@AdobeID')
  const keys = {
    token: layout.record('tokens:u1@AdobeID'),
    session: layout.record(`session:${tag}.${hash}`),
    lock: layout.lock('refresh:u1@AdobeID')
  }
  t.same(keys, {
    token: `lr:{${tag}}tokens:u1@AdobeID`,
    session: `lr:{${tag}}session:${tag}.${hash}`,
    lock: `lr:{${tag}}lock:refresh:u1@AdobeID`
  })
  t.equal(new Set(Object.values(keys).map(keySlot)).size, 1, 'one slot for the three')
  t.equal(layout.record('flow:x'), 'lr:flow:x', 'keys of no user are not tagged')
  t.equal(layout.record(sessionKey('id')), `lr:${sessionKey('id')}`, 'nor old-format sessions')
  t.equal(layout.lock('other'), 'lr:lock:other')
  t.throws(() => layout.record(`{${tag}}tokens:u1@AdobeID`), RangeError, 'a record key cannot pose as a tagged key')
  t.equal(layout.pattern('tokens:'), 'lr:*', 'SCAN narrows by the backend prefix only; the tag comes first')

  t.equal(layout.recordOf(keys.token), 'tokens:u1@AdobeID')
  t.equal(layout.recordOf(keys.session), `session:${tag}.${hash}`)
  t.equal(layout.recordOf('lr:flow:x'), 'flow:x')
  t.equal(layout.recordOf(keys.lock), undefined, 'locks are not records')
  t.equal(layout.recordOf('lr:lock:other'), undefined)
  t.equal(layout.recordOf('lr:tokens:u1@AdobeID'), undefined, 'a standalone-layout user key is not one of this layout\'s records')
  t.equal(layout.recordOf(`lr:{${b64('someone else')}}tokens:u1@AdobeID`), undefined, 'nor a key whose tag names another user')
  t.equal(layout.recordOf('lr:{unclosed'), undefined)
  for (const prefix of ['lr{', 'lr}', '{app}:']) {
    t.throws(() => clusterLayout(prefix), { code: 'LR_INVALID_OPTION', option: 'prefix' }, `prefix "${prefix}" refused`)
  }
})

test('keySlot follows Redis Cluster\'s hashing: CRC16-XMODEM mod 16384, hash tags, UTF-8 bytes', async (t) => {
  t.equal(crc16(Buffer.from('123456789')), 0x31c3, 'the CRC16-XMODEM check value')
  t.equal(keySlot('foo'), 12182, 'the CLUSTER KEYSLOT example of the Redis docs')
  t.equal(keySlot('{user1000}.following'), keySlot('user1000'))
  t.equal(keySlot('{user1000}.followers'), keySlot('user1000'))
  t.not(keySlot('foo{}{bar}'), keySlot('bar'), 'an empty first tag: the whole key is hashed')
  t.equal(keySlot('foo{{bar}}zap'), keySlot('{bar'), 'the tag runs from the first { to the first } after it')
  t.equal(keySlot('foo{bar}{zap}'), keySlot('bar'), 'only the first tag counts')
  t.equal(keySlot('ünïcødé'), crc16(Buffer.from('ünïcødé', 'utf8')) % 16384, 'bytes of the UTF-8 encoding')
})

test('groupBySlot: positions grouped by slot, in order of first appearance', async (t) => {
  const keys = ['{a}1', '{b}1', '{a}2', '{c}1', '{b}2', '{a}3']
  t.same(groupBySlot(keys), [[0, 2, 5], [1, 4], [3]])
  t.same(groupBySlot([]), [])
})
