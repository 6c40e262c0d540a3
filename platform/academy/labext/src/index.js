// ChainAcademy inside JupyterLab: an "Academy" menu (fetch an assignment, submit the open
// notebook) and a Submit button on every notebook's toolbar. The browser talks only to the learner's
// own Jupyter server (the academy server extension at <base>/academy/...), which calls academy
// with the token the hub gave the server: no academy credentials ever reach the page.

import { Dialog, ICommandPalette, showDialog, ToolbarButton } from '@jupyterlab/apputils';
import { URLExt } from '@jupyterlab/coreutils';
import { IMainMenu } from '@jupyterlab/mainmenu';
import { INotebookTracker } from '@jupyterlab/notebook';
import { ServerConnection } from '@jupyterlab/services';
import { Menu, Widget } from '@lumino/widgets';

const CATEGORY = 'Academy';
const POLL_MS = 500;
const WAIT_MS = 180000;

/** Call the academy server extension; throw an Error carrying its one-line message. */
async function api(path, init = {}) {
  const settings = ServerConnection.makeSettings();
  const url = URLExt.join(settings.baseUrl, 'academy', path);
  const reply = await ServerConnection.makeRequest(url, init, settings);
  let body = null;
  try {
    body = await reply.json();
  } catch (e) {
    body = null;
  }
  if (!reply.ok) {
    throw new Error((body && body.message) || `${reply.status} ${reply.statusText}`);
  }
  return body;
}

function textWidget(text) {
  const node = document.createElement('div');
  node.textContent = text;
  return new Widget({ node });
}

async function showError(title, error) {
  await showDialog({
    title,
    body: textWidget(String(error.message || error)),
    buttons: [Dialog.okButton()]
  });
}

/** Ask which released assignment to fetch; resolve to its id or null. */
async function pickAssignment(assignments) {
  const node = document.createElement('div');
  const select = document.createElement('select');
  select.className = 'academy-assignment-select';
  for (const a of assignments) {
    const option = document.createElement('option');
    option.value = String(a.id);
    const due = a.due_at ? ` (due ${new Date(a.due_at).toLocaleString()})` : '';
    option.textContent = `${a.course || ''} ${a.name || a.id}${due}`.trim();
    select.appendChild(option);
  }
  node.appendChild(select);
  const result = await showDialog({
    title: 'Fetch an assignment',
    body: new Widget({ node }),
    buttons: [Dialog.cancelButton(), Dialog.okButton({ label: 'Fetch' })]
  });
  return result.button.accept ? select.value : null;
}

/** Show score and feedback; the feedback HTML is shown in a sandboxed frame, scripts off. */
async function showResult(result) {
  const node = document.createElement('div');
  node.className = 'academy-result';
  const head = document.createElement('p');
  head.className = 'academy-score';
  if (result.status === 'graded') {
    head.textContent = `Score: ${result.score} / ${result.max_score}`;
  } else {
    head.textContent = `Grading ${result.status}: ${result.message || 'no score'}`;
  }
  node.appendChild(head);
  if (result.feedback_html) {
    const frame = document.createElement('iframe');
    frame.className = 'academy-feedback';
    frame.setAttribute('sandbox', '');
    frame.srcdoc = result.feedback_html;
    node.appendChild(frame);
  }
  await showDialog({
    title: 'Submission graded',
    body: new Widget({ node }),
    buttons: [Dialog.okButton()]
  });
}

async function fetchAssignment(app) {
  try {
    const assignments = (await api('assignments')).assignments;
    if (!assignments.length) {
      await showError('Nothing to fetch', new Error('No assignment is released to you yet.'));
      return;
    }
    const id = await pickAssignment(assignments);
    if (id === null) {
      return;
    }
    const fetched = await api('fetch', {
      method: 'POST',
      body: JSON.stringify({ assignment_id: id })
    });
    const notebook = fetched.paths.find(p => p.endsWith('.ipynb'));
    if (notebook) {
      await app.commands.execute('docmanager:open', { path: notebook });
    }
  } catch (error) {
    await showError('Fetch failed', error);
  }
}

async function submitCurrent(tracker, button) {
  const panel = tracker.currentWidget;
  if (!panel) {
    await showError('Nothing to submit', new Error('Open the notebook you want to submit.'));
    return;
  }
  const setLabel = text => {
    if (button) {
      button.node.dataset.academyState = text;
      button.node.title = text;
    }
  };
  try {
    await panel.context.save();
    setLabel('submitting');
    const submitted = await api('submit', {
      method: 'POST',
      body: JSON.stringify({ path: panel.context.path })
    });
    setLabel('grading');
    const started = Date.now();
    let result = submitted;
    while (!['graded', 'failed'].includes(result.status) && Date.now() - started < WAIT_MS) {
      await new Promise(resolve => setTimeout(resolve, POLL_MS));
      result = await api(`submissions/${encodeURIComponent(submitted.id)}`);
    }
    setLabel(result.status);
    await showResult(result);
  } catch (error) {
    setLabel('error');
    await showError('Submit failed', error);
  }
}

const plugin = {
  id: '@chainacademy/jupyterlab-academy:plugin',
  description: 'Fetch assignments and submit notebooks to ChainAcademy.',
  autoStart: true,
  requires: [INotebookTracker],
  optional: [IMainMenu, ICommandPalette],
  activate: (app, tracker, mainMenu, palette) => {
    app.commands.addCommand('academy:fetch', {
      label: 'Fetch Assignment…',
      caption: 'Copy a released assignment into your folder',
      execute: () => fetchAssignment(app)
    });
    app.commands.addCommand('academy:submit', {
      label: 'Submit Notebook',
      caption: 'Save and submit the open notebook for grading',
      isEnabled: () => tracker.currentWidget !== null,
      execute: () => submitCurrent(tracker, null)
    });
    if (mainMenu) {
      const menu = new Menu({ commands: app.commands });
      menu.id = 'academy-menu';
      menu.title.label = 'Academy';
      menu.addItem({ command: 'academy:fetch' });
      menu.addItem({ command: 'academy:submit' });
      mainMenu.addMenu(menu, true, { rank: 1000 });
    }
    if (palette) {
      palette.addItem({ command: 'academy:fetch', category: CATEGORY });
      palette.addItem({ command: 'academy:submit', category: CATEGORY });
    }
    tracker.widgetAdded.connect((_, panel) => {
      const button = new ToolbarButton({
        className: 'academy-submit-button',
        label: 'Submit',
        tooltip: 'Save and submit this notebook for grading',
        onClick: () => void submitCurrent({ currentWidget: panel }, button)
      });
      panel.toolbar.insertItem(10, 'academySubmit', button);
    });
  }
};

export default plugin;
