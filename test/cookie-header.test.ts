import { test } from 'tap'
import { cookieFromHeader } from '../lib/http/cookie-header.js'

test('one cookie is read from the header exactly by name', async (t) => {
  t.equal(cookieFromHeader('a=1; lr_session=abc.def; b=2', 'lr_session'), 'abc.def')
  t.equal(cookieFromHeader('lr_session=first', 'lr_session'), 'first')
  t.equal(cookieFromHeader('x_lr_session=no; lr_session=yes', 'lr_session'), 'yes', 'a name that merely ends with ours is not ours')
  t.equal(cookieFromHeader('lr_session_old=no', 'lr_session'), undefined)
  t.equal(cookieFromHeader('a=1;lr_session=tight', 'lr_session'), 'tight')
  t.equal(cookieFromHeader('lr_session="quoted"', 'lr_session'), 'quoted')
  t.equal(cookieFromHeader('lr_session=a%2Bb%3D', 'lr_session'), 'a+b=', 'percent-decoded as @fastify/cookie would')
  t.equal(cookieFromHeader('lr_session=%zz', 'lr_session'), undefined, 'malformed encoding is no cookie')
  t.equal(cookieFromHeader('lr_session=a=b', 'lr_session'), 'a=b')
  t.equal(cookieFromHeader('garbage', 'lr_session'), undefined)
  t.equal(cookieFromHeader('', 'lr_session'), undefined)
  t.equal(cookieFromHeader(undefined, 'lr_session'), undefined)
  t.equal(cookieFromHeader('a=1; lr_session=', 'lr_session'), '')
})

test('a cookie without "=" before ours does not hide it', async (t) => {
  t.equal(cookieFromHeader('theme; lr_session=abc', 'lr_session'), 'abc')
  t.equal(cookieFromHeader('a; b; lr_session=x; c', 'lr_session'), 'x')
  t.equal(cookieFromHeader('lr_session; other=1', 'lr_session'), undefined)
})
