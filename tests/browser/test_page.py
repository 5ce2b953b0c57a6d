#!/usr/bin/env python3
"""Real-browser test of the search page that `fathom serve` serves at `/`.

Drives Debian's Chromium (headless) through selenium against a running server:

    python3 tests/browser/test_page.py --url http://127.0.0.1:8080/ --shots /tmp/shots \
        --query "bread oven" --expect-source docs/cooking.md \
        --ingest-path kb --collection kb [--api-key KEY]

The server must have data to search (`--query` must find `--expect-source`) and an ingest root
holding the folder `--ingest-path`. Every step saves a PNG into --shots. Exits non-zero with a
message naming the failed step. Needs `pip install selenium` and `apt-get install chromium
chromium-driver`; selenium-manager is never used (the driver path is explicit).
"""

import argparse
import os
import re
import sys
import time
import traceback

try:
    from selenium import webdriver
    from selenium.common.exceptions import (StaleElementReferenceException, TimeoutException,
                                            WebDriverException)
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait
except ImportError:
    sys.exit("selenium is not installed: python3 -m venv venv && venv/bin/pip install selenium")

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


class Failure(Exception):
    pass


def tid(name):
    return f'[data-testid="{name}"]'


class PageTest:
    def __init__(self, args):
        self.args = args
        self.step_no = 0
        self.driver = None

    # ---------- plumbing ----------

    def start(self):
        for path in (CHROMIUM, CHROMEDRIVER):
            if not os.access(path, os.X_OK):
                raise Failure(f"{path} is missing: apt-get install -y chromium chromium-driver")
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,900",
                     "--disable-dev-shm-usage", "--lang=en-US"):
            options.add_argument(flag)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        service = webdriver.ChromeService(executable_path=CHROMEDRIVER)
        self.driver = webdriver.Chrome(service=service, options=options)
        self.driver.set_page_load_timeout(30)

    def stop(self):
        if self.driver:
            self.driver.quit()

    def step(self, name):
        self.step_no += 1
        self.current = f"{self.step_no:02d}-{name}"
        print(f"--- {self.current}", flush=True)

    def shot(self, suffix=""):
        path = os.path.join(self.args.shots, f"{self.current}{suffix}.png")
        self.driver.save_screenshot(path)
        print(f"    screenshot {path}")

    def q(self, css):
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def qa(self, css):
        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def wait(self, what, cond, timeout=20):
        try:
            return WebDriverWait(self.driver, timeout, poll_frequency=0.2,
                                 ignored_exceptions=(StaleElementReferenceException,)).until(lambda d: cond())
        except TimeoutException:
            raise Failure(f"timed out after {timeout} s waiting for {what}{self.page_error()}") from None

    def page_error(self):
        """The page's visible error message, to explain a failed wait."""
        try:
            found = self.qa(f'{tid("error")} p')
            text = found[0].text.strip() if found else ""
        except WebDriverException:
            return ""
        return f" (the page shows the error: {text!r})" if text else ""

    def check(self, ok, message):
        if not ok:
            raise Failure(message + self.page_error())

    def check_console(self):
        """Fails on JavaScript errors. Network entries are allowed only for expected answers:
        401 while the key is unknown, and 404 from GET /jobs on servers without that route."""
        bad = []
        for entry in self.driver.get_log("browser"):
            msg, level, source = entry.get("message", ""), entry.get("level"), entry.get("source")
            if level != "SEVERE":
                continue
            if source == "network" or "Failed to load resource" in msg:
                if ((self.args.api_key and "401" in msg) or re.search(r"/jobs - .*404", msg)
                        or (self.current.endswith("api-error-shown") and "/search - " in msg and "422" in msg)):
                    print(f"    expected: {msg}")
                    continue
            bad.append(f"[{source}] {msg}")
        self.check(not bad, "errors in the browser console:\n  " + "\n  ".join(bad))

    def results_seq(self):
        return int(self.q(tid("results")).get_attribute("data-seq") or 0)

    def search(self, submit_with_enter=True):
        before = self.results_seq()
        box = self.q(tid("search-input"))
        if submit_with_enter:
            box.send_keys(Keys.ENTER)
        else:
            self.q(tid("search-button")).click()
        self.wait("the search to finish", lambda: self.results_seq() > before, timeout=60)
        return [e.text for e in self.qa(tid("hit-source"))]

    def switch_view(self, name):
        self.q(tid(f"tab-{name}")).click()
        self.wait(f"the {name} view", lambda: self.q(f"#view-{name}").is_displayed())

    def no_markup_injected(self):
        n = self.driver.execute_script(
            "return document.querySelectorAll('#results script, #results img, #results iframe,"
            " #jobs script, #collections script').length")
        self.check(n == 0, f"{n} elements from untrusted text were injected into the page")

    def rerank_flow(self, a):
        """On a server with --reranker: the toggle is shown and on, a search says it was
        reranked, and unchecking it re-runs the search without."""
        self.step("rerank-on")
        toggle = self.q(tid("rerank"))
        self.check(toggle.is_displayed() and toggle.is_selected(),
                   "the rerank toggle is not shown, or not on by default")
        box = self.q(tid("search-input"))
        box.click()
        box.send_keys(a.rerank_query)
        sources = self.search(submit_with_enter=True)
        self.check(sources, f"no hits for {a.rerank_query!r}")
        status = self.q(tid("search-status")).text
        self.check("reranked" in status, f"search status {status!r} does not say reranked")
        title = self.q(tid("hit-score")).get_attribute("title")
        self.check("cross-encoder" in title, f"the score's explanation {title!r} does not name the reranker")
        self.check_console()
        self.shot()
        self.step("rerank-off")
        before = self.results_seq()
        self.q("label[for=rerank]").click()  # a change re-runs the search
        self.wait("the search without reranking", lambda: self.results_seq() > before
                  and "reranked" not in self.q(tid("search-status")).text, timeout=60)
        self.check_console()
        self.shot()

    # ---------- steps ----------

    def run(self):
        a = self.args
        os.makedirs(a.shots, exist_ok=True)
        self.start()
        d = self.driver

        if a.api_key:
            self.step("api-key-form")
            d.get(a.url)
            self.wait("the API key form", lambda: self.q(tid("key-panel")).is_displayed())
            self.check(d.switch_to.active_element == self.q(tid("key-input")),
                       "the key input does not have the focus")
            self.shot("-asked")
            key = self.q(tid("key-input"))
            key.send_keys("wrong-" + a.api_key)
            key.send_keys(Keys.ENTER)
            self.wait("the wrong key to be refused",
                      lambda: self.q(tid("key-panel")).is_displayed() and "not accept" in self.q(tid("key-error")).text)
            self.shot("-refused")
            key = self.q(tid("key-input"))
            key.send_keys(a.api_key)
            self.q(tid("key-submit")).click()
            self.wait("the key form to close", lambda: not self.q(tid("key-panel")).is_displayed())
            self.wait("the server info", lambda: self.q(tid("server-info")).text.strip() != "")
            self.shot("-accepted")

        self.step("loaded")
        if not a.api_key:
            d.get(a.url)
        self.wait("the search box", lambda: self.q(tid("search-input")).is_displayed())
        self.check("fathom" in d.title.lower(), f"page title is {d.title!r}, expected it to name fathom")
        self.wait("the server info", lambda: self.q(tid("server-info")).text.strip() != "")
        self.check(not self.q(tid("key-panel")).is_displayed(), "the key form is shown")
        self.check(self.q(tid("mode-hybrid")).is_displayed() and
                   self.q("#mode-hybrid").is_selected(), "hybrid is not the default mode")
        self.check(self.q(tid("error")).text.strip() == "", "an error is shown on load")
        self.check_console()
        self.shot()
        if a.rerank_query:
            self.rerank_flow(a)
            return
        self.check(not self.q(tid("rerank")).is_displayed(),
                   "the rerank toggle is shown by a server without a reranker")
        timing = d.execute_script("""
            const nav = performance.getEntriesByType('navigation')[0];
            const assets = performance.getEntriesByType('resource')
                .filter(r => /\\/(app\\.js|style\\.css)$/.test(new URL(r.name).pathname));
            const sum = (key) => nav[key] + assets.reduce((n, r) => n + r[key], 0);
            return {load_ms: nav.loadEventEnd - nav.startTime, files: 1 + assets.length,
                    bytes: sum('decodedBodySize'), transferred: sum('transferSize')};""")
        print(f"    page first load: {timing['load_ms']:.0f} ms to the load event, "
              f"{timing['files']} files, {timing['bytes']} bytes ({timing['transferred']} transferred)")

        self.step("search-hybrid")
        if a.search_collection:
            self.pick_collection(a.search_collection)
        box = self.q(tid("search-input"))
        box.click()
        box.send_keys(a.query)
        sources = self.search(submit_with_enter=True)
        self.check(sources, f"no hits for {a.query!r}")
        self.check(any(s == a.expect_source or s.endswith("/" + a.expect_source) for s in sources),
                   f"{a.expect_source!r} is not among the hits {sources}")
        status = self.q(tid("search-status")).text
        self.check("hybrid" in status, f"search status {status!r} does not say hybrid")
        scores = [e.text for e in self.qa(tid("hit-score"))]
        offsets = [e.text for e in self.qa(tid("hit-offsets"))]
        self.check(all(s.startswith("score ") for s in scores) and len(scores) == len(sources), f"scores {scores}")
        self.check(all(re.match(r"chars [\d,]+–[\d,]+$", o) for o in offsets), f"offsets {offsets}")
        marks = self.qa(f"{tid('hit-text')} mark")
        if not marks:
            print("    note: no query term is highlighted in the hybrid hits")
        self.no_markup_injected()
        self.check_console()
        self.shot()

        if a.location_query:
            self.step("search-location")
            box = self.q(tid("search-input"))
            box.clear()
            box.send_keys(a.location_query)
            sources = self.search(submit_with_enter=True)
            self.check(sources, f"no hits for {a.location_query!r}")
            first = self.qa(tid("hit"))[0]
            where = [e.text for e in first.find_elements(By.CSS_SELECTOR, tid("hit-location"))]
            self.check(where == [a.expect_location],
                       f"the top hit ({sources[0]}) shows the location {where}, expected {a.expect_location!r}")
            self.shot()
            box = self.q(tid("search-input"))
            box.clear()
            box.send_keys(a.query)
            self.search(submit_with_enter=True)

        self.step("search-keyword")
        self.q(tid("mode-text")).click()  # a mode change re-runs the search
        self.wait("keyword results", lambda: "keyword" in self.q(tid("search-status")).text
                  and self.q(tid("results")).get_attribute("aria-busy") is None, timeout=60)
        self.check(self.q("#mode-text").is_selected(), "keyword mode is not selected")
        sources = self.search(submit_with_enter=False)
        self.check(sources, f"keyword search for {a.query!r} found nothing")
        self.check("keyword" in self.q(tid("search-status")).text, "status does not say keyword")
        marks = self.qa(f"{tid('hit-text')} mark")
        self.check(marks, "keyword hits have no highlighted query term")
        self.no_markup_injected()
        self.check_console()
        self.shot()

        self.step("collections")
        self.switch_view("collections")
        wanted = a.search_collection or self.default_collection()
        card = self.wait(f"collection {wanted!r} in the list", lambda: self.collection_card(wanted))
        chunks = card["chunks"]
        self.check(re.fullmatch(r"[\d,]+", chunks) and int(chunks.replace(",", "")) > 0,
                   f"collection {wanted!r} shows chunks {chunks!r}")
        self.check(card["model"].strip() != "", "collection model is empty")
        print(f"    {wanted}: {chunks} chunks, model {card['model']}, last update {card['updated']}")
        self.check_console()
        self.shot()

        self.step("ingest")
        self.switch_view("ingest")
        self.q(tid("ingest-path")).send_keys(a.ingest_path)
        self.q(tid("ingest-collection")).send_keys(a.collection)
        for dismiss in self.qa(f'{tid("error")} button'):
            dismiss.click()
        known = set(self.job_ids())
        self.q(tid("ingest-submit")).click()
        def new_job():
            if self.page_error():  # the API refused the job: no use waiting
                raise Failure("starting the ingest job failed" + self.page_error())
            return next((i for i in self.job_ids() if i not in known), None)

        job_id = self.wait("the new ingest job", new_job)
        print(f"    started {job_id}")
        self.shot("-started")
        seen = set()

        def finished():
            j = self.job(job_id)
            if j and j["counts"] not in seen:
                seen.add(j["counts"])
                print(f"    {j['state']}: {j['counts']}")
            return j if j and j["state"] in ("done", "failed", "cancelled") else None

        job = self.wait(f"{job_id} to finish", finished, timeout=a.ingest_timeout)
        self.check(job["state"] == "done", f"{job_id} ended {job['state']}: {job['error']}")
        self.check("added" in job["summary"], f"{job_id} shows no summary")
        print(f"    {job_id}: {job['summary']}")
        self.check_console()
        self.shot("-done")

        self.step("collections-after-ingest")
        self.switch_view("collections")
        card = self.wait(f"collection {a.collection!r} with chunks in the list",
                         lambda: (lambda c: c if c and c["chunks"] not in ("", "0") else None)(
                             self.collection_card(a.collection)))
        print(f"    {a.collection}: {card['chunks']} chunks, last update {card['updated']}")
        self.shot()

        self.step("narrow")
        d.set_window_size(390, 844)
        self.switch_view("search")
        time.sleep(0.3)
        width = d.execute_script("return [document.documentElement.scrollWidth, window.innerWidth]")
        self.check(width[0] <= width[1], f"horizontal scrolling at 390 px: page {width[0]} px, window {width[1]} px")
        lefts = d.execute_script(
            "return [...document.querySelectorAll('#search-form .field')]"
            ".filter(e => e.getClientRects().length).map(e => e.getBoundingClientRect().left)")
        self.check(len(set(round(x) for x in lefts)) == 1, f"filters are not in one column: {lefts}")
        self.shot("-search")
        self.switch_view("ingest")
        d.execute_script("document.querySelector('[data-testid=\"jobs\"]').scrollIntoView()")
        self.shot("-ingest")
        self.check_console()

        self.step("api-error-shown")
        d.set_window_size(1280, 900)
        self.switch_view("search")
        k = self.q(tid("k"))
        k.clear()
        k.send_keys("0")  # the server answers 422 with a JSON message
        self.q(tid("search-button")).click()
        self.wait("the error region", lambda: self.q(tid("error")).text.strip() != "", timeout=30)
        region = self.q(tid("error"))
        self.check(region.get_attribute("role") == "alert", "the error region is not role=alert")
        message = self.q(tid("error-message")).text
        self.check(message and not re.match(r"\d{3}\b", message),
                   f"the error shows {message!r}, not the API's JSON error message")
        print(f"    error shown: {message}")
        self.shot()
        k.clear()
        k.send_keys("10")
        self.check_console()

    def job_ids(self):
        return self.driver.execute_script(
            "return [...document.querySelectorAll('[data-testid=\"job\"]')].map(e => e.dataset.jobId)")

    def job(self, job_id):
        return self.driver.execute_script("""
            const li = [...document.querySelectorAll('[data-testid="job"]')].find(e => e.dataset.jobId === arguments[0]);
            if (!li) return null;
            const t = (id) => (li.querySelector(`[data-testid="${id}"]`) || {}).textContent || '';
            return {state: li.dataset.state, counts: t('job-counts'), summary: t('job-summary'), error: t('job-error')};
        """, job_id)

    def default_collection(self):
        sel = self.q(tid("collection-select"))
        text = sel.find_element(By.CSS_SELECTOR, "option:checked").get_attribute("textContent")
        return re.sub(r" \(.*\)$", "", text.strip())

    def pick_collection(self, name):
        self.wait(f"collection {name!r} in the picker",
                  lambda: any(o.get_attribute("textContent").split(" (")[0] == name for o in self.qa(f'{tid("collection-select")} option')))
        for o in self.qa(f'{tid("collection-select")} option'):
            if o.get_attribute("textContent").split(" (")[0] == name:
                o.click()
                return

    def collection_card(self, name):
        """The texts of a collection's card, read in one go (the list may be re-rendered)."""
        return self.driver.execute_script("""
            const card = [...document.querySelectorAll('[data-testid="collection"]')]
                .find(c => c.dataset.name === arguments[0]);
            if (!card) return null;
            const t = (id) => (card.querySelector(`[data-testid="${id}"]`) || {}).textContent || '';
            return {chunks: t('collection-chunks'), model: t('collection-model'), updated: t('collection-updated')};
        """, name)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", required=True, help="the page, e.g. http://127.0.0.1:8080/")
    p.add_argument("--shots", required=True, help="folder for the screenshots")
    p.add_argument("--api-key", help="the server's API key: the page must ask for it first")
    p.add_argument("--query", default="bread oven")
    p.add_argument("--expect-source", default="docs/cooking.md", help="a source the query must find")
    p.add_argument("--search-collection", help="collection to search (default: the server's default)")
    p.add_argument("--location-query", help="a query whose top hit is in a paged document")
    p.add_argument("--expect-location", help='the location that hit shows, e.g. "p. 2"')
    p.add_argument("--rerank-query", help="the server runs a --reranker: check the rerank toggle with "
                   "this query, and only that")
    p.add_argument("--ingest-path", default="kb", help="folder under the server's ingest root")
    p.add_argument("--collection", default="browser-test", help="collection the ingest job writes")
    p.add_argument("--ingest-timeout", type=float, default=180)
    args = p.parse_args()

    t = PageTest(args)
    try:
        t.run()
    except Failure as e:
        where = getattr(t, "current", "start")
        try:
            if t.driver:
                t.shot("-FAILED")
        except WebDriverException:
            pass
        print(f"FAIL at step {where}: {e}", file=sys.stderr)
        return 1
    except WebDriverException as e:
        print(f"FAIL at step {getattr(t, 'current', 'start')}: browser error: {e.msg or e}", file=sys.stderr)
        traceback.print_exc()
        return 1
    finally:
        t.stop()
    print(f"OK: {t.step_no} steps, screenshots in {args.shots}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
