"""cdp.py - drive headless Chromium over the DevTools protocol on a pipe
(--remote-debugging-pipe: no port, nothing on the network), to use a page
as a user does and hear every console message, exception and refused
request it causes.

    with Browser(chromium, profile_dir) as b:
        b.open('file:///.../index.html')
        b.eval('document.title')
        b.problems      # console messages, exceptions, log entries
"""
import fcntl
import json
import os
import select
import subprocess
import time


class CDPError(Exception):
    pass


def _high(fd):
    n = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(fd)
    return n


class Browser:
    def __init__(self, chromium, profile, width=1280, height=900, timeout=60):
        self.timeout = timeout
        self.problems = []
        self.events = []
        self._id = 0
        self._buf = b''
        # the browser's ends go to 3 and 4: first out of the way of both
        to_chrome_r, self._w = os.pipe()
        self._r, from_chrome_w = os.pipe()
        to_chrome_r, from_chrome_w = _high(to_chrome_r), _high(from_chrome_w)

        def fds():
            os.dup2(to_chrome_r, 3)
            os.dup2(from_chrome_w, 4)

        self.proc = subprocess.Popen(
            [chromium, '--headless', '--no-sandbox', '--disable-gpu', '--no-first-run',
             '--remote-debugging-pipe', '--user-data-dir=' + profile,
             '--window-size=%d,%d' % (width, height), 'about:blank'],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            preexec_fn=fds, close_fds=False)
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        targets = self.call('Target.getTargets')['targetInfos']
        page = [t for t in targets if t['type'] == 'page'][0]
        self.session = self.call('Target.attachToTarget', targetId=page['targetId'], flatten=True)['sessionId']
        for domain in ('Runtime', 'Log', 'Page'):
            self.call(domain + '.enable', session=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        try:
            self.call('Browser.close')
        except (CDPError, OSError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for fd in (self._w, self._r):
            try:
                os.close(fd)
            except OSError:
                pass

    def _read(self, deadline):
        while b'\0' not in self._buf:
            left = deadline - time.time()
            if left <= 0:
                raise CDPError('chromium did not answer within %ds' % self.timeout)
            if select.select([self._r], [], [], left)[0]:
                chunk = os.read(self._r, 1 << 16)
                if not chunk:
                    raise CDPError('chromium closed its pipe')
                self._buf += chunk
        msg, self._buf = self._buf.split(b'\0', 1)
        return json.loads(msg.decode('utf-8'))

    def _note(self, m):
        self.events.append(m)
        p = m.get('params', {})
        if m.get('method') == 'Runtime.consoleAPICalled':
            self.problems.append('console.%s: %s' % (p['type'], ' '.join(
                str(a.get('value', a.get('description', ''))) for a in p.get('args', []))))
        elif m.get('method') == 'Runtime.exceptionThrown':
            d = p.get('exceptionDetails', {})
            self.problems.append('exception: %s %s' % (d.get('text'), d.get('exception', {}).get('description', '')))
        elif m.get('method') == 'Log.entryAdded':
            e = p.get('entry', {})
            self.problems.append('log %s: %s %s' % (e.get('level'), e.get('text'), e.get('url', '')))

    def call(self, method, session=False, **params):
        self._id += 1
        msg = {'id': self._id, 'method': method, 'params': params}
        if session:
            msg['sessionId'] = self.session
        os.write(self._w, json.dumps(msg).encode('utf-8') + b'\0')
        deadline = time.time() + self.timeout
        while True:
            m = self._read(deadline)
            if m.get('id') == self._id:
                if 'error' in m:
                    raise CDPError('%s: %s' % (method, m['error']))
                return m.get('result', {})
            self._note(m)

    def wait_event(self, method):
        for i, m in enumerate(self.events):
            if m.get('method') == method:
                del self.events[i]
                return m
        deadline = time.time() + self.timeout
        while True:
            m = self._read(deadline)
            self._note(m)
            if m.get('method') == method:
                self.events.remove(m)
                return m

    def open(self, url):
        self.events = []
        self.call('Page.navigate', session=True, url=url)
        self.wait_event('Page.loadEventFired')

    def eval(self, expr):
        r = self.call('Runtime.evaluate', session=True, expression=expr, returnByValue=True, awaitPromise=True)
        if 'exceptionDetails' in r:
            raise CDPError('%s: %s' % (expr, r['exceptionDetails']))
        return r['result'].get('value')

    def mouse(self, kind, x, y):
        self.call('Input.dispatchMouseEvent', session=True, type=kind, x=x, y=y, button='left',
                  clickCount=1 if kind in ('mousePressed', 'mouseReleased') else 0)
