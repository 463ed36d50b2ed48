/**
 * Plain http is acceptable only to this machine (local mocks, tests, the demo): anything else could
 * be read or rewritten on the network. `hostname` as URL.hostname gives it (IPv6 in brackets).
 */
export function isLoopbackHost (hostname: string): boolean {
  return hostname === 'localhost' || hostname === '[::1]' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(hostname)
}
