/** Where a user's token record lives in the store: `tokens:<IMS user id>`. */
export const TOKEN_PREFIX = 'tokens:'

export function tokenKey (userId: string): string {
  return `${TOKEN_PREFIX}${userId}`
}
