// A default device name from the platform: "Chrome on Android", "Safari on iPhone".

function browserName(ua, data) {
  const brands = (data && data.brands) || [];
  for (const [brand, name] of [['Microsoft Edge', 'Edge'], ['Google Chrome', 'Chrome'], ['Opera', 'Opera'], ['Samsung Internet', 'Samsung Internet']]) {
    if (brands.some((b) => b.brand === brand)) return name;
  }
  if (/Edg\//.test(ua)) return 'Edge';
  if (/SamsungBrowser\//.test(ua)) return 'Samsung Internet';
  if (/Firefox\/|FxiOS\//.test(ua)) return 'Firefox';
  if (/CriOS\/|Chrome\//.test(ua)) return 'Chrome';
  if (/Safari\//.test(ua)) return 'Safari';
  return 'Browser';
}

function platformName(ua, data) {
  if (/iPhone/.test(ua)) return 'iPhone';
  if (/iPad/.test(ua)) return 'iPad';
  if (/Android/.test(ua)) return 'Android';
  if (/CrOS/.test(ua)) return 'ChromeOS';
  if (/Mac OS X|Macintosh/.test(ua)) return 'Mac';
  if (/Windows/.test(ua)) return 'Windows';
  if (data && data.platform) return data.platform;
  if (/Linux/.test(ua)) return 'Linux';
  return 'this device';
}

/** "Chrome on Android" and the like, at most 64 characters (the server's name rule). */
export function defaultDeviceName(nav = globalThis.navigator) {
  const ua = (nav && nav.userAgent) || '';
  const data = nav && nav.userAgentData;
  return `${browserName(ua, data)} on ${platformName(ua, data)}`.slice(0, 64);
}
