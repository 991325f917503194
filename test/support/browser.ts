// Headless Chromium for the tests that look at a page as a person would: Debian's
// /usr/bin/chromium (package `chromium`) driven by playwright-core, which cannot fetch
// a browser of its own here. A missing browser fails the test with the package to
// install, never skips it. Every browser started here is closed by `closeBrowsers`.
import fs from 'node:fs'
import { chromium, type Browser } from 'playwright-core'

export const chromiumPath = '/usr/bin/chromium'

/** The flags a headless Chromium needs in a container (see the brief's machine facts). */
export const chromiumFlags = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
]

const browsers = new Set<Browser>()

export async function launchChromium(): Promise<Browser> {
  if (!fs.existsSync(chromiumPath)) {
    throw new Error(`${chromiumPath} is missing: install the Debian package "chromium" (apt-get install -y chromium)`)
  }
  const browser = await chromium.launch({ executablePath: chromiumPath, args: chromiumFlags, timeout: 60_000 })
  browsers.add(browser)
  return browser
}

export async function closeBrowsers(): Promise<void> {
  await Promise.all([...browsers].map((b) => b.close().catch(() => undefined)))
  browsers.clear()
}
