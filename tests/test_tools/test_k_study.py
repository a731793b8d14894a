"""tools/analysis_tools/k_study.py, shortened: two k values trained at
once, two validations each; the curves it reports are the mAP that mmdet's
VOCMetric logged."""
import json
import os.path as osp
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def test_k_study_writes_curves_table_and_plot(tmp_path):
    work = tmp_path / 'study'
    proc = subprocess.run([
        sys.executable,
        osp.join('tools', 'analysis_tools', 'k_study.py'), '--ks', '1', '3',
        '--iters', '4',
        '--val-interval', '2', '--batch-size', '2', '--num-train', '8',
        '--num-test', '4', '--work-dir',
        str(work), '--data-root',
        str(tmp_path / 'data'), '--parallel'
    ],
                          capture_output=True,
                          text=True,
                          timeout=600,
                          cwd=ROOT)
    assert proc.returncode == 0, (proc.stdout[-2000:], proc.stderr[-3000:])
    result = json.loads((work / 'k_study.json').read_text())
    assert sorted(result['curves']) == ['1', '3']
    for k, points in result['curves'].items():
        assert [p['iter'] for p in points] == [2, 4]
        assert 0 < points[0]['seconds'] < points[1]['seconds']
        # the same numbers as the validation lines of mmengine's log
        log = (work / f'k{k}.log').read_text()
        logged = [
            float(line.split('pascal_voc/mAP:')[1].split()[0])
            for line in log.splitlines() if 'pascal_voc/mAP:' in line
        ]
        assert logged == [round(p['mAP'], 4) for p in points]
        cfg = (work / f'k{k}' / 'rfcn_r18_synthetic-voc.py').read_text()
        assert f'output_size={k}' in cfg.replace(' ', '')
    table = (work / 'k_study.md').read_text()
    assert '| 1 x 1 |' in table and '| 3 x 3 |' in table
    assert '2 runs at once' in table.splitlines()[0]
    assert (work / 'k_study.png').stat().st_size > 5000
