// The daemon's jest reporter (see ai_agents/testing/jest_verdict.py). Loaded by the daemon's --config,
// never from the workspace. Reads its configuration (report fd, nonce) from the descriptor named by
// AI_AGENTS_VERDICT_FD before any test runs, closes it and removes the variable, then streams one
// JSON record per test over the inherited report descriptor.
'use strict';
const fs = require('fs');

class DaemonReporter {
  constructor() {
    const ctl = Number(process.env.AI_AGENTS_VERDICT_FD);
    delete process.env.AI_AGENTS_VERDICT_FD;
    let text = '';
    try {
      text = fs.readFileSync(ctl, 'utf8');
    } finally {
      try { fs.closeSync(ctl); } catch (e) { /* already closed */ }
    }
    const config = JSON.parse(text);
    this.fd = config.report_fd;
    this.nonce = config.nonce;
    this.send({ t: 'start' });
  }

  send(record) {
    const line = JSON.stringify(Object.assign({ k: this.nonce }, record)) + '\n';
    try { fs.writeSync(this.fd, line); } catch (e) { /* the daemon is gone */ }
  }

  onTestResult(test, result) {
    const file = result.testFilePath;
    if (result.testExecError || (result.failureMessage && !result.testResults.length)) {
      this.send({ t: 'suite_error', file, message: String(result.failureMessage || (result.testExecError || {}).message || 'failed to run').slice(0, 8000) });
    }
    for (const c of result.testResults) {
      this.send({ t: 'case', file, ancestors: c.ancestorTitles, title: c.title, status: c.status,
                  message: (c.failureMessages || []).join('\n').slice(0, 8000) });
    }
  }

  onRunComplete(contexts, results) {
    // results.success is only set after the reporters ran: the daemon judges from the counts.
    this.send({ t: 'end', failed: results.numFailedTests,
                passed: results.numPassedTests, suites_failed: results.numFailedTestSuites,
                runtime_errors: results.numRuntimeErrorTestSuites });
  }
}

module.exports = DaemonReporter;
