/**
 * Drives an administrator's browser through the test authorization server's login and consent (oidc-provider's
 * development interactions) with plain HTTP requests: follows redirects, keeps cookies, submits the two forms.
 */

/** Follows `authorizationUrl` through login and consent; returns the URL the browser is finally sent to. */
export async function loginAndConsent(
  authorizationUrl: string,
  options: { redirectUri: string; accountId?: string; deny?: boolean },
): Promise<string> {
  const cookies = new Map<string, string>();
  const send = async (url: string, init: RequestInit = {}): Promise<Response> => {
    const response = await fetch(url, {
      ...init,
      redirect: 'manual',
      headers: {
        ...(init.headers as Record<string, string>),
        cookie: [...cookies].map(([k, v]) => `${k}=${v}`).join('; '),
      },
    });
    for (const line of response.headers.getSetCookie()) {
      const [pair] = line.split(';');
      const at = pair!.indexOf('=');
      cookies.set(pair!.slice(0, at).trim(), pair!.slice(at + 1).trim());
    }
    return response;
  };
  let url = authorizationUrl;
  for (let hop = 0; hop < 20; hop += 1) {
    if (url.startsWith(options.redirectUri)) return url;
    const response = await send(url);
    const location = response.headers.get('location');
    if (location !== null) {
      await response.body?.cancel();
      url = new URL(location, url).href;
      continue;
    }
    const page = await response.text();
    if (response.status !== 200 || !/\/interaction\//.test(new URL(url).pathname)) {
      throw new Error(`unexpected ${response.status} at ${url}: ${page.slice(0, 300)}`);
    }
    // The development interactions render either the login form or the consent form.
    const prompt = /name="prompt" value="(\w+)"/.exec(page)?.[1];
    if (prompt === 'consent' && options.deny === true) {
      url = new URL(`${new URL(url).pathname}/abort`, url).href;
      continue;
    }
    const form =
      prompt === 'login'
        ? new URLSearchParams({ prompt: 'login', login: options.accountId ?? 'admin@example.test', password: 'x' })
        : new URLSearchParams({ prompt: 'consent' });
    const submitted = await send(url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: form.toString(),
    });
    const next = submitted.headers.get('location');
    await submitted.body?.cancel();
    if (next === null) throw new Error(`the ${prompt ?? 'unknown'} form at ${url} answered ${submitted.status}`);
    url = new URL(next, url).href;
  }
  throw new Error('too many redirects');
}
